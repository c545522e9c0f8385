from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from kiln.ec2_errors import IncorrectInstanceState, UnsupportedOperation
from kiln.errors import InvalidInput, SystemRequirement
from kiln.runtime import instances, procs, records
from kiln.runtime.exec import exec_in


def _mountinfo_mentions(path: Path) -> bool:
    return str(path) in Path("/proc/self/mountinfo").read_text()


def test_launch_exec_terminate_leaves_no_mount_process_or_directory(busybox_rootfs: Path) -> None:
    instance = instances.launch([busybox_rootfs])
    assert instance.state == "running" and instance.id.startswith("i-")
    assert instance.init is not None and procs.is_alive(instance.init.pid, instance.init.start_time)
    namespace = procs.pidns_inode(instance.init.pid)
    assert namespace is not None and namespace != procs.pidns_inode(os.getpid())
    result = exec_in(instance.id, ["sh", "-c", "echo hello; echo oops >&2; exit 3"])
    assert (result.exit_code, result.stdout, result.stderr, result.timed_out) == (
        3,
        "hello\n",
        "oops\n",
        False,
    )
    assert exec_in(instance.id, ["hostname"]).stdout.strip() == instance.id
    assert exec_in(instance.id, ["id", "-u"]).stdout.strip() == "0"
    assert _mountinfo_mentions(instance.dir)
    members = [procs.identify(pid) for pid in procs.pids_in_pidns(namespace)]
    assert len(members) == 2  # bwrap's pid 1 and the sleeper

    done = instances.terminate(instance.id)
    assert done.state == "terminated" and done.state_reason_code == "Client.UserInitiatedShutdown"
    assert not _mountinfo_mentions(instance.dir)
    assert not procs.is_alive(instance.init.pid, instance.init.start_time)
    assert not any(procs.is_alive(p.pid, p.start_time) for p in members if p is not None)
    assert not procs.is_alive(instance.monitor.pid, instance.monitor.start_time)
    assert not instance.dir.exists()
    assert records.get(instance.id).state == "terminated"  # the row is kept
    assert instances.terminate(instance.id).state == "terminated"  # idempotent, as EC2
    with pytest.raises(IncorrectInstanceState):
        exec_in(instance.id, ["true"])


def test_exec_gets_env_cwd_stdin_and_a_clean_environment(busybox_rootfs: Path, cleanup_instances) -> None:
    instance = instances.launch([busybox_rootfs])
    cleanup_instances.append(instance.id)
    lines: list[str] = []
    result = exec_in(
        instance.id,
        ["sh", "-c", 'echo "$GREETING"; pwd; cat; env'],
        env={"GREETING": "hi there"},
        cwd="/etc",
        stdin=b"from stdin\n",
        on_stdout=lines.append,
    )
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:3] == ["hi there", "/etc", "from stdin"]
    assert "".join(lines).splitlines(keepends=True)[:3] == ["hi there\n", "/etc\n", "from stdin\n"]
    assert "KILN_HOME" not in result.stdout and "HOME=/root" in result.stdout


def test_root_inside_lacks_only_the_capabilities_that_reach_the_host(busybox_rootfs: Path, cleanup_instances):
    instance = instances.launch([busybox_rootfs])
    cleanup_instances.append(instance.id)
    status = exec_in(instance.id, ["sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status /proc/2/status"])
    masks = {int(line.split()[-1], 16) for line in status.stdout.splitlines()}
    assert len(masks) == 1  # exec'd commands and the sandbox's init: the same set
    [mask] = masks
    for dropped in (16, 17, 22, 25):  # sys_module, sys_rawio, sys_boot, sys_time
        assert not mask & (1 << dropped)
    for kept in (0, 1, 12, 21):  # chown, dac_override, net_admin, sys_admin
        assert mask & (1 << kept)


def test_tmp_is_the_root_volumes_and_shm_a_tmpfs(busybox_rootfs: Path, cleanup_instances) -> None:
    instance = instances.launch([busybox_rootfs])
    cleanup_instances.append(instance.id)
    # apt drops to the _apt user and needs a writable /tmp: sticky 1777, as on any Linux.
    modes = exec_in(instance.id, ["stat", "-c", "%a", "/tmp", "/dev/shm"]).stdout.split()
    assert modes == ["1777", "1777"]
    exec_in(instance.id, ["sh", "-c", "echo scratch > /tmp/scratch; echo shared > /dev/shm/s"])
    # As on an EC2 instance, /tmp is on the root volume (what the host writes there, the instance sees).
    assert (instance.upper_dir / "tmp" / "scratch").read_text() == "scratch\n"
    assert not (instance.upper_dir / "dev").exists()


def test_exit_code_of_a_killed_command_is_128_plus_signal(busybox_rootfs: Path, cleanup_instances) -> None:
    instance = instances.launch([busybox_rootfs])
    cleanup_instances.append(instance.id)
    assert exec_in(instance.id, ["sh", "-c", "kill -9 $$"]).exit_code == 137


def test_writes_go_to_the_root_volume_not_the_layer(busybox_rootfs: Path, cleanup_instances) -> None:
    instance = instances.launch([busybox_rootfs])
    cleanup_instances.append(instance.id)
    exec_in(instance.id, ["sh", "-c", "echo kept > /root/note; rm /etc/hostname"])
    assert (instance.upper_dir / "root" / "note").read_text() == "kept\n"
    assert (busybox_rootfs / "etc" / "hostname").exists()
    assert not (instance.merged_dir / "etc" / "hostname").exists()
    other = instances.launch([busybox_rootfs])
    cleanup_instances.append(other.id)
    assert exec_in(other.id, ["cat", "/etc/hostname"]).stdout == "busybox\n"
    assert exec_in(other.id, ["test", "-e", "/root/note"]).exit_code == 1


def test_stop_keeps_the_root_volume_and_start_brings_it_back(busybox_rootfs: Path, cleanup_instances) -> None:
    instance = instances.launch([busybox_rootfs])
    cleanup_instances.append(instance.id)
    exec_in(instance.id, ["sh", "-c", "echo survives > /root/data"])
    stopped = instances.stop(instance.id)
    assert stopped.state == "stopped" and stopped.init is None
    assert not procs.is_alive(instance.init.pid, instance.init.start_time)
    assert not _mountinfo_mentions(instance.dir)
    assert (instance.upper_dir / "root" / "data").exists()
    with pytest.raises(IncorrectInstanceState, match="not running"):
        exec_in(instance.id, ["true"])
    assert instances.stop(instance.id).state == "stopped"  # stopping a stopped instance is fine

    started = instances.start(instance.id)
    assert started.state == "running" and started.init != instance.init
    console = instance.console_log.read_text().splitlines()
    events = [line.split(" kiln: ")[1].split(" ")[0] for line in console]
    assert events == ["starting", "processes", "starting"]
    assert exec_in(instance.id, ["cat", "/root/data"]).stdout == "survives\n"
    assert started.launch_time > instance.launch_time


def _mount_options(target: Path) -> set[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(target):
            return set(fields[-1].split(","))
    raise AssertionError(f"{target} is not mounted")


def test_a_build_instances_root_volume_is_volatile_and_survives_stop_and_start(
        busybox_rootfs: Path, cleanup_instances) -> None:  # type: ignore[no-untyped-def]
    """A build's (owned) instance skips syncs to disk, a user's does not; stopped and started in the same
    boot of the host, the build's keeps what it held."""
    volatile = {"volatile", "fsync=volatile"}  # the kernel's word for it before Linux 6.6, and since
    users = instances.launch([busybox_rootfs])
    cleanup_instances.append(users.id)
    assert not _mount_options(users.merged_dir) & volatile
    builds = instances.launch([busybox_rootfs], owned=True)
    cleanup_instances.append(builds.id)
    assert _mount_options(builds.merged_dir) & volatile
    exec_in(builds.id, ["sh", "-c", "echo survives > /root/data && sync"])  # sync: accepted, not waited for
    instances.stop(builds.id)
    assert instances.start(builds.id).state == "running"
    assert exec_in(builds.id, ["cat", "/root/data"]).stdout == "survives\n"
    assert _mount_options(builds.merged_dir) & volatile


def test_instance_store_instances_cannot_be_stopped_only_terminated(busybox_rootfs: Path) -> None:
    instance = instances.launch([busybox_rootfs], root_device_type="instance-store")
    try:
        with pytest.raises(UnsupportedOperation) as refused:
            instances.stop(instance.id)
        assert refused.value.code == "UnsupportedOperation"
        assert "'ebs' root device type" in str(refused.value)
        assert instances.get(instance.id).state == "running"
    finally:
        assert instances.terminate(instance.id).state == "terminated"
    assert not instance.dir.exists()


def test_reboot_restarts_processes_and_keeps_files(busybox_rootfs: Path, cleanup_instances) -> None:
    instance = instances.launch([busybox_rootfs], root_device_type="instance-store")
    cleanup_instances.append(instance.id)
    exec_in(
        instance.id, ["sh", "-c", "echo x > /root/file; setsid sleep 1000 < /dev/null > /dev/null 2>&1 &"]
    )
    namespace = procs.pidns_inode(instance.init.pid)
    before = [procs.identify(pid) for pid in procs.pids_in_pidns(namespace)]
    assert len(before) == 3  # pid 1, the sleeper, the service
    rebooted = instances.reboot(instance.id)
    assert rebooted.state == "running" and rebooted.init != instance.init
    assert not any(procs.is_alive(p.pid, p.start_time) for p in before if p is not None)
    assert exec_in(instance.id, ["cat", "/root/file"]).stdout == "x\n"


def test_network_none_has_only_loopback_and_host_a_namespace_of_its_own(
    busybox_rootfs: Path, cleanup_instances
) -> None:
    isolated = instances.launch([busybox_rootfs])
    cleanup_instances.append(isolated.id)
    links = exec_in(isolated.id, ["ip", "-o", "link"]).stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    assert "UP" in links

    networked = instances.launch([busybox_rootfs], network="host")
    cleanup_instances.append(networked.id)
    links = exec_in(networked.id, ["ip", "-o", "link"]).stdout.splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo", "tap0"]  # not the host's interfaces
    assert all("UP" in line for line in links)
    resolver = exec_in(networked.id, ["cat", "/etc/resolv.conf"]).stdout
    assert "nameserver 10.0.2.3" in resolver.splitlines()  # the NAT's DNS forwarder, bound read-only
    instances.stop(networked.id)
    # The image has no resolv.conf: the empty mount point bwrap made is not left in the volume.
    assert not (networked.upper_dir / "etc" / "resolv.conf").exists()


def test_a_service_keeps_running_between_execs_on_loopback(busybox_rootfs: Path, cleanup_instances) -> None:
    instance = instances.launch([busybox_rootfs])
    cleanup_instances.append(instance.id)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = exec_in(instance.id, ["httpd", "-p", f"127.0.0.1:{port}", "-h", "/var/www"])
    assert started.exit_code == 0
    fetched = exec_in(instance.id, ["wget", "-q", "-O", "-", f"http://127.0.0.1:{port}/index.html"])
    assert (fetched.exit_code, fetched.stdout) == (0, "hello from kiln\n")
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect(("127.0.0.1", port))  # the instance's loopback is not the host's


def test_timeout_kills_the_whole_process_tree(busybox_rootfs: Path, cleanup_instances) -> None:
    instance = instances.launch([busybox_rootfs])
    cleanup_instances.append(instance.id)
    namespace = procs.pidns_inode(instance.init.pid)
    seen: list[procs.ProcessId] = []

    def grandchild(line: str) -> None:
        host = procs.host_pid(namespace, int(line))
        if host is not None and (identity := procs.identify(host)) is not None:
            seen.append(identity)

    result = exec_in(instance.id, ["sh", "-c", "sleep 300 & echo $!; wait"], timeout=1, on_stdout=grandchild)
    assert result.timed_out and result.exit_code == 124
    assert len(seen) == 1  # the backgrounded sleep existed, seen from the host
    assert procs.cmdline(seen[0].pid)[:1] in (["sleep"], [])
    assert procs.wait_gone(seen, 5.0)
    assert exec_in(instance.id, ["true"]).exit_code == 0  # the instance itself lives on


def test_layers_stack_in_the_instance(busybox_rootfs: Path, layer, cleanup_instances) -> None:
    top = layer("app", {"etc/app.conf": "setting=1\n", "etc/hostname": None})
    instance = instances.launch([busybox_rootfs, top])
    cleanup_instances.append(instance.id)
    assert exec_in(instance.id, ["cat", "/etc/app.conf"]).stdout == "setting=1\n"
    assert exec_in(instance.id, ["test", "-e", "/etc/hostname"]).exit_code == 1


def test_bad_requests_change_nothing(busybox_rootfs: Path, tmp_path: Path, kiln_home: Path) -> None:
    with pytest.raises(InvalidInput, match="instance type"):
        instances.launch([busybox_rootfs], instance_type_name="z9.huge")
    with pytest.raises(InvalidInput, match="does not exist"):
        instances.launch([tmp_path / "missing"])
    with pytest.raises(InvalidInput, match="network"):
        instances.launch([busybox_rootfs], network="bridge")
    assert instances.list_instances() == []
    assert not (kiln_home / "instances").exists() or not any((kiln_home / "instances").iterdir())


def test_a_launch_that_fails_in_the_sandbox_is_cleaned_up(tmp_path: Path, layer) -> None:
    broken = layer("broken", {"dev": "a file where /dev must be a directory", "bin/sh": "not a shell"})
    with pytest.raises(SystemRequirement, match="sandbox failed to start"):
        instances.launch([broken])
    [failed] = instances.list_instances()
    assert failed.state == "terminated" and failed.state_reason_code == "Server.InternalError"
    assert not failed.dir.exists() and not _mountinfo_mentions(failed.dir)
