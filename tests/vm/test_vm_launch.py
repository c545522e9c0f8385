"""Launching VM instances without booting a guest (busybox with a stand-in kernel: QEMU starts, the
guest does not boot): two launches at once each get the SSH port their own network helper bound, a
launch whose kiln is killed while QEMU starts leaves no QEMU once recovered (recovery leaves a launch
that holds its claim alone), ``instance list`` shows the VM's network, and the ``vm-disks`` cache is
trimmed — a deregistered AMI's disk and the least recently used above the limit go, a disk an instance
uses stays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.processes import processes_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="importing a root file system needs root")

CLI = "from kiln.cli.main import main; main()"


def _kernel_ami(busybox_copy: Callable[[str], Path], name: str, extra: str = "") -> str:
    from kiln.store import api

    root = busybox_copy(name)
    (root / "boot").mkdir(exist_ok=True)
    (root / "boot" / "vmlinuz-6.1.0-99-cloud-amd64").write_bytes(b"a stand-in kernel\n" + extra.encode())
    return api.import_rootfs(root, name=name)


def _age(disk: Path, seconds: float = 3600) -> None:
    """As if last used ``seconds`` ago."""
    past = time.time() - seconds
    os.utime(disk, (past, past))


def test_two_launches_at_once_each_get_the_port_their_network_bound(kiln, busybox_copy, kiln_home: Path) -> None:  # type: ignore[no-untyped-def]
    from kiln.runtime import instances, procs
    from kiln.runtime.vm_process import listening_ports
    from kiln.services.ec2.instances import VmOptions, run_instance, terminate_instance

    ami = _kernel_ami(busybox_copy, "launch-race")
    terminate_instance(run_instance(ami, vm=VmOptions()).id, force=True)  # the disk exported, KVM probed
    from kiln import home

    env = {**os.environ, "PYTHONPATH": str(Path(home.__file__).parents[1])}
    launches = [subprocess.Popen([sys.executable, "-c", CLI, "instance", "run", ami, "--vm", "--output", "json"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    answers = [launch.communicate(timeout=600) for launch in launches]
    assert [launch.returncode for launch in launches] == [0, 0], [err for _, err in answers]
    described = [json.loads(out) for out, _ in answers]
    ports = [d["Kiln"]["SshPort"] for d in described]
    assert len(set(ports)) == 2 and all(isinstance(port, int) for port in ports)
    helpers = [instances.get(d["InstanceId"]).network_helper for d in described]
    for instance, port, helper in zip(described, ports, helpers, strict=True):
        # QEMU runs in a network namespace of its own: its network helper listens for SSH on the host
        assert helper is not None and listening_ports(helper.pid) == [port]
        assert listening_ports(instance["Kiln"]["InitPid"]) == []
        assert instance["Kiln"]["Network"] == "user-slirp" and instance["Kiln"]["HostLocalNetwork"] is False
    keys = {(kiln_home / "instances" / d["InstanceId"] / "kiln_key.pub").read_text().split()[1] for d in described}
    assert len(keys) == 2, "each instance has its own exec key"
    listed = kiln("instance", "list").stdout
    assert all(f"user-slirp ssh=127.0.0.1:{port}" in listed for port in ports), listed
    guests = [procs.identify(d["Kiln"]["InitPid"]) for d in described]
    assert kiln("instance", "terminate", "--force", *[d["InstanceId"] for d in described]).exit_code == 0
    assert all(g is not None and not procs.is_alive(g.pid, g.start_time) for g in guests)
    assert all(h is not None and not procs.is_alive(h.pid, h.start_time) for h in helpers)


DIES_DURING_BOOT = """
import os, sys
from kiln.runtime import records, vm_netns
from kiln.services.ec2.instances import VmOptions, run_instance

def killed(*args, **kwargs):  # kiln killed after QEMU started, before the instance is recorded
    os.kill(os.getpid(), 9)

setattr(vm_netns if sys.argv[2] == "connect" else records, sys.argv[2], killed)
run_instance(sys.argv[1], vm=VmOptions(), host_local=sys.argv[2] == "insert")
"""


@pytest.mark.parametrize("killed_in", ["connect", "insert"])
def test_a_launch_killed_while_qemu_starts_leaves_no_qemu_once_recovered(  # type: ignore[no-untyped-def]
        busybox_copy, kiln_home: Path, killed_in: str) -> None:
    """Killed while connecting QEMU's network (isolated) or recording the instance (host-local): the
    instance was not recorded yet; its launch's claim is gone with kiln, so recovery stops QEMU and
    removes the directory."""
    from kiln import home
    from kiln.runtime import instances, launch_claims, recovery

    ami = _kernel_ami(busybox_copy, f"killed-launch-{killed_in}")
    env = {**os.environ, "PYTHONPATH": str(Path(home.__file__).parents[1])}
    child = subprocess.run([sys.executable, "-c", DIES_DURING_BOOT, ami, killed_in], env=env, capture_output=True,
                           timeout=600)
    assert child.returncode == -9, child.stderr
    assert instances.list_instances() == []
    [left] = [path.name for path in (kiln_home / "instances").iterdir() if not path.name.startswith(".")]
    qemu = launch_claims.processes_named(left)
    assert qemu, "QEMU outlived kiln"
    assert recovery.recover().unrecorded == [left]
    assert launch_claims.processes_named(left) == []
    assert [path.name for path in (kiln_home / "instances").iterdir()] == []  # the directory, the claim


def test_recovery_leaves_a_launch_that_holds_its_claim_alone(kiln_home: Path) -> None:
    from kiln.runtime import launch_claims, recovery

    with launch_claims.claim("i-0123456789abcdef0"):
        (kiln_home / "instances" / "i-0123456789abcdef0").mkdir()
        assert recovery.recover().unrecorded == []  # a launch under way: its instance is not recorded yet
        assert (kiln_home / "instances" / "i-0123456789abcdef0").is_dir()
    assert recovery.recover().unrecorded == ["i-0123456789abcdef0"]  # the launch died without recording it
    assert not (kiln_home / "instances" / "i-0123456789abcdef0").exists()


def test_the_disk_cache_lets_go_of_deregistered_and_least_recently_used_disks(
        kiln, busybox_copy, kiln_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from kiln.runtime import vm_disk
    from kiln.services.ec2.instances import VmOptions, run_instance, terminate_instance
    from kiln.services.ec2.vm_disks import bootable_disk, trim
    from kiln.store import api

    amis = [_kernel_ami(busybox_copy, f"cached-{n}", extra=str(n)) for n in range(3)]
    disks = [bootable_disk(api.get_image(ami, "local"), "local") for ami in amis]
    assert len(set(disks)) == 3 and all(disk.is_file() for disk in disks)
    running = run_instance(amis[0], vm=VmOptions())  # disk 0 in use (and its empty overlay made)
    assert vm_disk.overlay_templates(disks[0])
    for disk in disks:
        _age(disk)
    assert trim() == []  # all within the default limit, all registered

    from kiln.store.image_ops import deregister_image

    deregister_image(amis[2])
    assert trim() == [disks[2]] and not disks[2].exists() and not disks[2].with_suffix(".amis").exists()
    assert trim(limit=0) == [disks[1]]  # the least recently used goes; the one in use stays
    assert disks[0].is_file() and vm_disk.overlay_templates(disks[0])

    monkeypatch.setenv("KILN_VM_DISK_CACHE_LIMIT", "lots")
    refused = kiln("instance", "run", amis[1], "--vm")
    assert refused.exit_code == 1 and "KILN_VM_DISK_CACHE_LIMIT" in refused.stderr and "Traceback" not in refused.stderr
    assert [i["InstanceId"] for i in json.loads(kiln("instance", "list", "--output", "json").stdout)["Instances"]
            ] == [running.id]
    monkeypatch.setenv("KILN_VM_DISK_CACHE_LIMIT", "0")
    _age(disks[0])
    terminate_instance(running.id, force=True)  # its disk no longer in use: over the limit, it goes
    assert not disks[0].exists() and vm_disk.overlay_templates(disks[0]) == []


@pytest.mark.parametrize("host_local", [False, True], ids=["isolated", "host-local"])
@pytest.mark.parametrize("broken", ["console.log", "root.qcow2"])
def test_a_qemu_that_fails_to_start_ends_the_launch_terminated_with_nothing_left(  # type: ignore[no-untyped-def]
        busybox_copy, kiln_home: Path, monkeypatch: pytest.MonkeyPatch, broken: str, host_local: bool) -> None:
    from kiln.errors import SystemRequirement
    from kiln.runtime import instances, vm
    from kiln.services.ec2.instances import VmOptions, run_instance

    ami = _kernel_ami(busybox_copy, f"qemu-fails-{broken}")
    prepare = vm._prepare

    def prepared_then_broken(instance, spec):  # type: ignore[no-untyped-def]
        prepare(instance, spec)
        (instance.dir / broken).unlink()
        (instance.dir / broken).mkdir()  # QEMU cannot open a directory as its console or disk

    monkeypatch.setattr(vm, "_prepare", prepared_then_broken)
    with pytest.raises(SystemRequirement, match="QEMU did not start") as refused:
        run_instance(ami, vm=VmOptions(), host_local=host_local)
    assert broken in str(refused.value)
    [ended] = instances.list_instances()
    assert ended.state == "terminated" and "QEMU did not start" in (ended.state_reason or "")
    assert processes_of(ended.dir) == [] and not ended.dir.exists()
