"""EC2 instances for every front end: launched from AMIs, pinned to their layers, captured back.

``runtime/`` launches from layer lists; this module turns an AMI id into its layer list through the
image store, refuses AMIs that cannot be launched (the store's one launchability check: the
caller's launch permission, then the AMI's state), records the AMI's last launched time, keeps the
AMI's layers while the instance exists, and turns an instance's root volume back into a new AMI. Every
instance belongs to the account that launched it; to any other account it does not exist. The other
instance actions pass through to the runtime and answer with EC2's field names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from kiln.documents.network import NetworkPolicy
from kiln.ec2_errors import InvalidInstanceIDNotFound, InvalidParameterValue
from kiln.errors import InvalidInput
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.runtime import instances
from kiln.runtime.instance_types import DEFAULT_INSTANCE_TYPE
from kiln.runtime.records import RUNNING, STOPPED, TERMINATED, Instance
from kiln.services.ec2.callers import principal
from kiln.store import api
from kiln.store.images import ImageInfo

PIN_PREFIX = "instance:"
# An instance's root volume lives on its AMI's layers until it is terminated, however long that is.
PIN_TTL = timedelta(days=36500)


def run_instance(
    image_id: str,
    *,
    region: str = DEFAULT_REGION,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    root_device_type: str | None = None,
    network: str = "none",
    host_local: bool = False,
    tags: Mapping[str, str] | None = None,
    owned: bool = False,
    account: str = DEFAULT_ACCOUNT,
    vm: VmOptions | None = None,
) -> Instance:
    """Launch an instance of AMI ``image_id`` for ``account`` (EC2 ``RunInstances`` for one instance);
    with ``vm``, a virtual machine booting the AMI's disk under QEMU instead of a sandbox.

    Refused as EC2 refuses it (``AuthFailure`` without launch permission, ``InvalidAMIID.Disabled``,
    ``InvalidAMIID.Unavailable``, an AMI the account's allowed images settings do not allow) and when
    one of the AMI's blobs is quarantined or missing; deprecated AMIs may be launched.
    """
    from kiln.db.base import utcnow
    from kiln.db.engine import session
    from kiln.services.ec2.allowed_images import check_use, judging

    with session():  # the checks in one transaction
        judged = judging(account=account, region=region)
        # Like an EBS volume outliving its AMI: the layers stay while the instance exists, even if the
        # AMI is deregistered and its snapshots deleted (gc keeps pinned blobs and unpacked layers).
        image, digests = api.launchable_layers(image_id, region, principal(account), described=judged)
        if not image.snapshot_ids:
            raise InvalidInput(f"{image_id} has no root snapshot", location=image_id)
        if judged:
            check_use(image.seen_by(account), "RunInstances", account=account, region=region)
    inserted: list[str] = []

    def recorded(instance: Instance) -> None:  # in the transaction that inserts the instance
        api.set_last_launched(image_id, utcnow(), region=region)
        api.pin(region, digests, PIN_PREFIX + instance.id, PIN_TTL)
        inserted.append(instance.id)

    try:
        if vm is not None:
            return _run_vm(image, vm, region=region, instance_type=instance_type,
                           root_device_type=root_device_type or image.root_device_type or "ebs", tags=tags,
                           owned=owned, account=account, digests=digests, on_inserted=recorded,
                           host_local=host_local)
        return instances.launch(
            api.layer_dirs(image_id, region),
            image_id=image_id,
            region=region,
            instance_type_name=instance_type,
            root_device_type=root_device_type or image.root_device_type or "ebs",
            network=network,
            host_local=host_local,
            tags=tags,
            owned=owned,
            account=account,
            on_inserted=recorded,
        )
    except BaseException:
        for instance_id in inserted:  # the launch failed: the instance ended terminated
            api.unpin_holder(PIN_PREFIX + instance_id)
        raise


@dataclass(frozen=True)
class VmOptions:
    """RunInstances' settings that only a VM instance uses."""

    user_data: bytes | None = None
    key_name: str | None = None
    http_tokens: str | None = None  # default: required when the AMI's ImdsSupport is v2.0
    delete_on_termination: bool = True
    volume_size: int | None = None  # GiB
    network: str = "host"  # "none": no way out of the guest but kiln's SSH and metadata forwards
    s3_policy: NetworkPolicy | None = None  # a build's: what the guest's S3 steps reach through the host


VM_TAG = "kiln:vm"  # RunInstances over the API: this instance tag with the value "true" asks for a VM


def vm_options_from_request(params: Mapping[str, Any], tags: Mapping[str, str]) -> VmOptions | None:
    """RunInstances' VM settings (``UserData``, ``KeyName``, ``MetadataOptions.HttpTokens``, the root's
    ``BlockDeviceMappings[].Ebs`` ``VolumeSize`` and ``DeleteOnTermination``) when the request's
    instance tags carry ``kiln:vm=true``; None for a sandbox."""
    from kiln.services.fleet.template_data import user_data

    if tags.get(VM_TAG, "").lower() != "true":
        return None
    ebs: dict[str, Any] = next((m.get("Ebs") or {} for m in params.get("BlockDeviceMappings") or []
                                if m.get("DeviceName") in (None, "/dev/xvda", "/dev/sda1")), {})
    return VmOptions(user_data=user_data(dict(params)), key_name=params.get("KeyName"),
                     http_tokens=(params.get("MetadataOptions") or {}).get("HttpTokens"),
                     delete_on_termination=ebs.get("DeleteOnTermination", True) is not False,
                     volume_size=ebs.get("VolumeSize"))


def _run_vm(image: ImageInfo, options: VmOptions, *, region: str, instance_type: str, root_device_type: str,
            tags: Mapping[str, str] | None, owned: bool, account: str, digests: Sequence[str],
            on_inserted: Callable[[Instance], None], host_local: bool) -> Instance:
    from kiln.runtime import vm
    from kiln.runtime.vm_metadata import HTTP_TOKENS
    from kiln.services.ec2.key_pairs import public_key
    from kiln.services.ec2.vm_disks import bootable_disk

    if options.http_tokens is not None and options.http_tokens not in HTTP_TOKENS:
        raise InvalidParameterValue(f"HttpTokens must be one of {', '.join(HTTP_TOKENS)}",
                                    location="MetadataOptions.HttpTokens")
    if options.volume_size is not None and options.volume_size < 1:
        raise InvalidParameterValue("VolumeSize is a whole number of GiB, 1 or more",
                                    location=f"VolumeSize={options.volume_size}")
    key = public_key(options.key_name, account=account, region=region) if options.key_name else None
    backing = bootable_disk(image, region, digests)
    boot_mode = image.boot.boot_mode or "uefi-preferred"
    spec = vm.VmSpec(
        backing=backing, accel=vm.choose_accel(backing, uefi=boot_mode == "uefi"), boot_mode=boot_mode,
        volume_size=None if options.volume_size is None else options.volume_size << 30,
        delete_on_termination=options.delete_on_termination, user_data=options.user_data,
        key_name=options.key_name, public_key=key, network=options.network, s3_policy=options.s3_policy,
        host_local=host_local,
        http_tokens=options.http_tokens or ("required" if image.boot.imds_support == "v2.0" else "optional"),
    )
    return vm.launch(spec, image_id=image.id, region=region, instance_type_name=instance_type,
                     root_device_type=root_device_type, tags=tags, owned=owned, account=account,
                     on_inserted=on_inserted)


def _get(instance_id: str, account: str | None, region: str | None = None) -> Instance:
    """The instance, if ``account`` launched it in ``region`` (None: kiln's own work, any instance, any
    region); another account's, or one in another region, is refused in the very words of one that
    does not exist."""
    try:
        instance = instances.get(instance_id)
    except InvalidInstanceIDNotFound as error:
        raise error.at(account=account, region=region) from None
    if (account is not None and instance.account_id != account) or (region is not None and instance.region != region):
        raise InvalidInstanceIDNotFound(instance_id).at(account=account, region=region)
    return instance


def terminate_instance(
    instance_id: str, *, force: bool = True, account: str | None = None, region: str | None = None
) -> Instance:
    """Terminate and let go of the instance's layers at once (recovery would, at the next command)."""
    vm = _get(instance_id, account, region).vm is not None
    terminated = instances.terminate(instance_id, force=force)
    api.unpin_holder(PIN_PREFIX + instance_id)
    if vm:  # its disk may be the one the cache can let go of now
        from kiln.services.ec2.vm_disks import trim

        with contextlib.suppress(InvalidInput):  # a bad cache limit: refused at the next launch
            trim()
    return terminated


def release_terminated_pins() -> list[str]:
    """Recovery hook: drop the layer pins of instances that are terminated (or gone)."""
    released = []
    for holder in sorted(api.pin_holders(PIN_PREFIX)):
        instance_id = holder.removeprefix(PIN_PREFIX)
        try:
            state = instances.get(instance_id).state
        except InvalidInstanceIDNotFound:
            state = TERMINATED
        if state == TERMINATED:
            api.unpin_holder(holder)
            released.append(instance_id)
    return released


def create_image(
    instance_id: str,
    *,
    name: str,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    no_reboot: bool = False,
    account: str | None = None,
    region: str | None = None,
) -> str:
    """Capture the instance's root volume as a new AMI (EC2 ``CreateImage``); returns the AMI id.
    The AMI belongs to the instance's account, whoever owns the AMI it was launched from.

    As on EC2, a running EBS-backed instance is stopped for the capture and started again, so the
    file system is consistent, unless ``no_reboot``.
    """
    instance = _get(instance_id, account, region)
    if instance.image_id is None:
        raise InvalidInput(f"instance {instance_id} was not launched from an image", location="InstanceId")
    if instance.state not in (RUNNING, STOPPED):
        raise InvalidInput(f"instance {instance_id} is {instance.state}", location="InstanceId")
    restart = instance.state == RUNNING and not no_reboot and instance.root_device_type == "ebs"
    if restart:
        instances.stop(instance_id)
    try:
        if instance.vm is not None:
            return _create_image_from_vm(instance, name=name, description=description, tags=tags)
        return str(
            api.create_image_from_upper(
                instance.image_id,
                instance.upper_dir,
                region=instance.region,
                name=name,
                description=description,
                tags=dict(tags or {}),
                owner=instance.account_id,
            )
        )
    finally:
        if restart:
            instances.start(instance_id)


def _create_image_from_vm(instance: Instance, *, name: str, description: str | None,
                          tags: Mapping[str, str] | None) -> str:
    """A VM's root volume as one more layer over its AMI's (``kiln.runtime.vm_capture``)."""
    import shutil

    from kiln.runtime.vm_capture import capture_upper, scratch_dir

    assert instance.image_id is not None and instance.vm is not None
    volume = Path(instance.vm["root"])
    with scratch_dir(volume.parent) as scratch:  # recovery removes what a killed capture leaves
        upper = scratch / "upper"
        upper.mkdir()
        capture_upper(volume, api.layer_dirs(instance.image_id, instance.region), upper)
        try:
            return str(api.create_image_from_upper(
                instance.image_id, upper, region=instance.region, name=name, description=description,
                tags=dict(tags or {}), owner=instance.account_id,
            ))
        finally:
            shutil.rmtree(upper, ignore_errors=True)


# --- pass-throughs to the runtime, in EC2's shapes -----------------------------------------------


def describe_instances(
    *,
    states: Sequence[str] | None = None,
    image_id: str | None = None,
    account: str | None = DEFAULT_ACCOUNT,
    region: str | None = None,
) -> dict[str, Any]:
    """EC2 ``DescribeInstances`` of ``account`` in ``region`` (flattened: no reservations), with kiln's
    own fields under ``Kiln``; ``account=None``: every account's, ``region=None``: every region's."""
    found = instances.list_instances(states=states or None, image_id=image_id, account=account)
    return {"Instances": [i.describe() for i in found if region is None or i.region == region]}


def describe_instance(
    instance_id: str, *, account: str | None = DEFAULT_ACCOUNT, region: str | None = None
) -> dict[str, Any]:
    return _get(instance_id, account, region).describe()


def _change(
    instance_ids: Sequence[str], action: Callable[[str], Instance], account: str | None, region: str | None
) -> dict[str, Any]:
    """Each instance's previous and current state, as EC2's Start/Stop/TerminateInstances answer;
    every instance must be ``account``'s and in ``region`` before any is changed."""
    for instance_id in instance_ids:
        _get(instance_id, account, region)
    changes = []
    for instance_id in instance_ids:
        previous = instances.get(instance_id).describe()["State"]
        current = action(instance_id).describe()["State"]
        changes.append({"InstanceId": instance_id, "PreviousState": previous, "CurrentState": current})
    return {"Instances": changes}


def stop_instances(
    instance_ids: Sequence[str], *, force: bool = False, account: str | None = DEFAULT_ACCOUNT,
    region: str | None = None,
) -> dict[str, Any]:
    """Stop EBS-backed instances: processes end, the root volume stays."""
    return _change(instance_ids, lambda instance_id: instances.stop(instance_id, force=force), account, region)


def start_instances(
    instance_ids: Sequence[str], *, account: str | None = DEFAULT_ACCOUNT, region: str | None = None
) -> dict[str, Any]:
    return _change(instance_ids, instances.start, account, region)


def reboot_instances(
    instance_ids: Sequence[str], *, account: str | None = DEFAULT_ACCOUNT, region: str | None = None
) -> dict[str, Any]:
    """Restart the instances' processes; root volumes (also instance store) are kept."""
    return _change(instance_ids, instances.reboot, account, region)


def terminate_instances(
    instance_ids: Sequence[str], *, force: bool = False, account: str | None = DEFAULT_ACCOUNT,
    region: str | None = None,
) -> dict[str, Any]:
    """Terminate: processes end, root volumes are deleted, the AMI layers' pins are released."""
    return _change(
        instance_ids, lambda instance_id: terminate_instance(instance_id, force=force), account, region
    )


EXEC_CHANNELS = ("auto", "ssh", "serial")


def exec_command(
    instance_id: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    on_stdout: Callable[[str], None] | None = None,
    on_stderr: Callable[[str], None] | None = None,
    account: str | None = DEFAULT_ACCOUNT,
    region: str | None = None,
    via: str = "auto",
) -> dict[str, Any]:
    """Run a command inside a running instance; ``on_stdout``/``on_stderr`` receive output as it comes.
    A VM's command goes ``via`` SSH or kiln's agent on a virtio-serial port (``serial``); ``auto``: SSH
    when the guest's SSH server greets, else serial."""
    from kiln.runtime.exec import exec_in
    from kiln.runtime.vm_serial import exec_serial
    from kiln.runtime.vm_ssh import exec_vm, ssh_answers

    if via not in EXEC_CHANNELS:
        raise InvalidParameterValue(f"via must be one of {', '.join(EXEC_CHANNELS)}", location=f"via={via}")
    instance = _get(instance_id, account, region)
    if instance.vm is None:
        if via != "auto":
            raise InvalidParameterValue(f"{instance_id} is a sandbox: exec runs in it directly, not via {via}",
                                        location=f"via={via}")
        run = exec_in
    else:
        if via == "auto":
            via = "ssh" if instance.state == RUNNING and ssh_answers(instance) else "serial"
        run = exec_vm if via == "ssh" else exec_serial
    result = run(instance_id, argv, env=env, cwd=cwd, timeout=timeout, on_stdout=on_stdout, on_stderr=on_stderr)
    return {
        "InstanceId": instance_id,
        "ExitCode": result.exit_code,
        "TimedOut": result.timed_out,
        "Stdout": result.stdout,
        "Stderr": result.stderr,
    }


def get_console_output(
    instance_id: str, *, account: str | None = DEFAULT_ACCOUNT, region: str | None = None
) -> dict[str, Any]:
    """EC2 ``GetConsoleOutput``: what the instance's init wrote (not base64 encoded)."""
    path = _get(instance_id, account, region).console_log
    return {"InstanceId": instance_id, "Output": path.read_text(errors="replace") if path.exists() else ""}
