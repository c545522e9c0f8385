"""VM instances: an AMI's bootable disk run under QEMU (KVM when it can run the guest, else TCG).

A VM instance lives in ``KILN_HOME/instances/<id>/``: ``root.qcow2`` (the root volume, a qcow2
overlay over the AMI's disk; an instance-store-backed one keeps it in ``KILN_HOME/scratch/<id>/``),
``seed.img`` (the NoCloud seed), ``metadata.json`` (what the metadata endpoint answers),
``kiln_key`` (the SSH key ``kiln instance exec`` logs in with), ``console.log`` (the serial
console), ``qmp.sock``, ``qemu.pid``; unless host-local addresses are allowed, ``slirp.sock`` and
``network.log`` of the helper that connects QEMU's own network namespace (``kiln.runtime.vm_netns``).
Stop, start, reboot and terminate go through ``kiln.runtime.instances`` like a sandbox's;
``kiln.runtime.vm_process`` starts and stops the processes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kiln.documents.network import NetworkPolicy
from kiln.errors import InvalidInput
from kiln.files import write_atomic
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION, instances_dir, kiln_home
from kiln.model.ids import new_id
from kiln.runtime import (
    instances,
    kvm_memo,
    launch_claims,
    procs,
    qemu,
    records,
    vm_disk,
    vm_keys,
    vm_s3_relay,
    vm_seed,
)
from kiln.runtime.instance_types import DEFAULT_INSTANCE_TYPE, instance_type
from kiln.runtime.records import Instance
from kiln.runtime.vm_keys import ssh_keygen as ssh_keygen  # where key pairs are made
from kiln.runtime.vm_metadata import HTTP_TOKENS
from kiln.runtime.vm_process import GUEST_ADDRESS

BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
HYPERVISOR_TAG, ACCELERATOR_TAG = "kiln:Hypervisor", "kiln:Accelerator"


@dataclass(frozen=True)
class VmSpec:
    """How to run one VM instance, beyond its instance type."""

    backing: Path  # the AMI's bootable disk (qcow2), shared and never written
    accel: qemu.Accel
    boot_mode: str = "uefi-preferred"
    volume_size: int | None = None  # bytes; default the backing disk's
    delete_on_termination: bool = True
    user_data: bytes | None = None
    key_name: str | None = None
    public_key: str | None = None
    http_tokens: str = "optional"
    # "none" (a build whose infrastructure configuration says subnetId none): QEMU's user network
    # restricted, so the guest reaches nothing but the forwards kiln sets up (SSH in, the metadata endpoint)
    network: str = "host"
    # what the guest's S3 steps may reach through the host's S3 relay (kiln.runtime.vm_s3_relay): a
    # build's network policy; None (a VM a user launched): the relay refuses
    s3_policy: NetworkPolicy | None = None
    # the host's loopback (as the gateway 169.254.0.2) and link-local addresses reachable from the guest:
    # QEMU then runs in the host's network namespace; otherwise in one of its own (kiln.runtime.vm_netns)
    host_local: bool = False


def _check(spec: VmSpec, root_device_type: str) -> None:
    if root_device_type not in records.ROOT_DEVICE_TYPES:
        raise InvalidInput(f"root device type must be one of {', '.join(records.ROOT_DEVICE_TYPES)}",
                           location="RootDeviceType")
    if spec.http_tokens not in HTTP_TOKENS:
        raise InvalidInput(f"HttpTokens must be one of {', '.join(HTTP_TOKENS)}", location="MetadataOptions.HttpTokens")
    if spec.network not in ("host", "none"):
        raise InvalidInput(f"network must be host or none, not {spec.network!r}", location="Network")
    if spec.host_local and spec.network == "none":
        raise InvalidInput("host-local addresses need a network (network host)", location="HostLocalNetwork")
    if spec.boot_mode not in BOOT_MODES:
        raise InvalidInput(f"unknown boot mode {spec.boot_mode!r}: one of {', '.join(BOOT_MODES)}", location="BootMode")
    if not spec.backing.is_file():
        raise InvalidInput(f"the image's disk {spec.backing} does not exist", location="ImageId")


def _prepare(instance: Instance, spec: VmSpec) -> None:
    vm = instance.vm
    assert vm is not None
    instance.dir.mkdir(parents=True)
    instance.console_log.touch()
    if vm.get("scratch"):
        Path(vm["scratch"]).mkdir(parents=True)
    kiln_key = vm_keys.take_key(Path(vm["ssh_key"]), comment=f"kiln-exec@{instance.id}")
    keys = [kiln_key] + ([spec.public_key] if spec.public_key else [])
    vm_disk.create_overlay(spec.backing, Path(vm["root"]), size=spec.volume_size)
    files = vm_seed.seed_files(instance.id, instance.hostname, user_data=spec.user_data, public_keys=keys)
    vm_seed.write_seed(Path(vm["seed"]), files)
    metadata = {
        "ami_id": instance.image_id or "", "instance_id": instance.id, "instance_type": instance.instance_type,
        "local_ipv4": GUEST_ADDRESS, "hostname": instance.hostname, "http_tokens": spec.http_tokens,
        "public_keys": {spec.key_name or "key": spec.public_key} if spec.public_key else {},
        "user_data": spec.user_data.decode("utf-8", "replace") if spec.user_data is not None else None,
    }
    Path(vm["metadata_config"]).write_text(json.dumps(metadata))
    vm_s3_relay.write_config(Path(vm["s3_relay_config"]), spec.s3_policy)


def launch(
    spec: VmSpec,
    *,
    image_id: str | None = None,
    region: str = DEFAULT_REGION,
    instance_type_name: str = DEFAULT_INSTANCE_TYPE,
    root_device_type: str = "ebs",
    tags: Mapping[str, str] | None = None,
    owned: bool = False,
    account: str = DEFAULT_ACCOUNT,
    on_inserted: Callable[[Instance], None] | None = None,
) -> Instance:
    """Launch a VM instance booting a copy-on-write overlay of ``spec.backing``; returns it running
    (QEMU started: the guest boots on; cloud-init finishes minutes later under TCG). ``on_inserted``
    runs in the unit of work that records the instance (the caller's own records of the launch: one
    transaction, not several).

    The instance is recorded while QEMU sets up the machine, not before its files are made and QEMU
    started: that work overlaps QEMU's. Until then the launch holds its claim on the instance's
    directory (``kiln.runtime.launch_claims``: what a launch killed before it recorded the instance
    leaves, recovery removes)."""
    from kiln.db.engine import session

    _check(spec, root_device_type)
    kind = instance_type(instance_type_name)
    instance_id = new_id("i")
    base = instances_dir() / instance_id
    scratch = kiln_home() / "scratch" / instance_id if root_device_type == "instance-store" else None
    vm = {
        "backing": str(spec.backing), "root": str((scratch or base) / "root.qcow2"),
        "scratch": str(scratch) if scratch else None,
        "kept_root": str(kiln_home() / "volumes" / f"{instance_id}-root.qcow2"),
        "seed": str(base / "seed.img"), "metadata_config": str(base / "metadata.json"),
        "s3_relay_config": str(base / vm_s3_relay.CONFIG_NAME), "qmp": str(base / "qmp.sock"),
        "ssh_key": str(base / "kiln_key"), "ssh_user": "root", "accel": spec.accel.name,
        "accel_reason": spec.accel.reason, "boot_mode": spec.boot_mode, "http_tokens": spec.http_tokens,
        "delete_on_termination": spec.delete_on_termination, "key_name": spec.key_name,
        "local_ipv4": GUEST_ADDRESS, "ssh_port": None, "metadata_helper": None,
        "restrict_network": spec.network == "none",
    }  # fmt: skip
    paths = {"dir": str(base), "upper": vm["root"], "work": str(base), "merged": str(base), "console":
             str(base / "console.log"), "cgroups": [], "host_local_network": spec.host_local, "network_helper": None,
             "vm": vm}  # fmt: skip
    values = dict(
        id=instance_id, image_id=image_id, region=region, account_id=account, instance_type=kind.name,
        root_device_type=root_device_type, network=spec.network, hostname=instance_id, vcpus=kind.vcpus,
        memory_mib=kind.memory_mib, lower_dirs=[], paths=paths, owned=owned,
        # tags, so every front end shows them (the EC2 API has no field for a hypervisor of this kind)
        tags={**dict(tags or {}), HYPERVISOR_TAG: "qemu", ACCELERATOR_TAG: spec.accel.name},
    )  # fmt: skip

    def insert(**fields: object) -> Instance:
        with session():
            instance = records.insert(**{**values, **fields})
            if on_inserted is not None:
                on_inserted(instance)
        return instance

    draft = records.draft(**values)
    set_up = threading.Event()
    vm_keys.refill_pool_once(set_up)  # for the next launches, once QEMU is set up
    try:
        with launch_claims.claim(instance_id):
            return instances.boot_launched(draft, lambda: _prepare(draft, spec), insert)
    finally:
        set_up.set()


def choose_accel(disk: Path, *, uefi: bool = False) -> qemu.Accel:
    """KVM or TCG for ``disk`` (``kiln.runtime.qemu.probe_kvm``), so the probe boot happens once per disk:
    the answer is kept beside the disk, except a failure of KVM itself, which holds for every disk on
    this host until it reboots and is kept once for all of them (``kiln.runtime.kvm_memo``). The disk's
    answer holds for this boot of the host and this QEMU only: a disk cache that outlives a reboot into
    another hypervisor, or a QEMU upgrade, is probed again."""
    answer = disk.with_name(disk.name + ".accel.json")
    host = {"boot_id": procs.boot_id(), "qemu": kvm_memo.binary_key()}
    try:
        known = json.loads(answer.read_text())
        if all(known.get(key) == value for key, value in host.items()) and host["boot_id"] is not None:
            return qemu.Accel(known["name"], known["reason"])
    except (OSError, ValueError, KeyError):
        pass
    remembered = kvm_memo.remembered()
    if remembered is not None:
        return remembered
    scratch = disk.with_name(disk.name + ".probe")
    scratch.mkdir(exist_ok=True)
    probe = qemu.probe_kvm(disk, scratch, uefi=uefi)
    if probe.host_fault and kvm_memo.remember(probe.accel, disk):
        return probe.accel
    write_atomic(answer, json.dumps({"name": probe.accel.name, "reason": probe.accel.reason, **host}))
    return probe.accel
