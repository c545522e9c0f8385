"""Crash clean-up with real processes killed by pid (kill -9), as a crash would leave them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kiln.db.engine import session
from kiln.db.tables.instances import InstanceRecord
from kiln.ec2_errors import IncorrectInstanceState
from kiln.runtime import instances, procs, sandbox
from kiln.runtime.exec import exec_in
from kiln.runtime.recovery import recover

LAUNCHER = textwrap.dedent(
    """
    import sys, time
    from kiln.runtime import instances, sandbox

    mode, layer = sys.argv[1], sys.argv[2]
    if mode == "half":
        # Die between starting the sandbox and recording it: the launch is half done.
        real_spawn = sandbox.spawn

        def spawn_then_hang(spec):
            real_spawn(spec)
            print(spec.hostname, flush=True)
            time.sleep(600)

        sandbox.spawn = spawn_then_hang
        instances.launch([layer])
    else:
        owned = instances.launch([layer], owned=True)
        plain = instances.launch([layer])
        print(owned.id, plain.id, flush=True)
        time.sleep(600)
    """
)


def _run_launcher(mode: str, layer: Path) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, mode, str(layer)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, "the launcher died before it launched"
    return process, line.split()


def _kill9(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()  # type: ignore[union-attr]


def _mounted(path: Path) -> bool:
    return str(path) in Path("/proc/self/mountinfo").read_text()


def test_owned_instances_of_a_dead_owner_are_handed_back(busybox_rootfs: Path) -> None:
    launcher, (owned, plain) = _run_launcher("owned", busybox_rootfs)
    try:
        assert recover().orphaned == []  # the owner is alive: nothing to hand back
    finally:
        _kill9(launcher)
    report = recover()
    assert report.orphaned == [owned]  # not the plain one: it is no build's business
    assert report.stopped == report.terminated == []
    assert instances.get(owned).state == "running"  # recovery reports; the build layer decides
    assert exec_in(owned, ["true"]).exit_code == 0
    for instance_id in (owned, plain):
        instances.terminate(instance_id, force=True)
    assert recover().orphaned == []


def test_a_launch_killed_half_way_is_terminated_and_unmounted(busybox_rootfs: Path) -> None:
    launcher, (instance_id,) = _run_launcher("half", busybox_rootfs)
    try:
        instance = instances.get(instance_id)
        assert instance.state == "pending" and instance.init is None
        assert _mounted(instance.merged_dir)
        assert recover().terminated == []  # the launch is in progress: left alone
        orphans = sandbox.find_monitors(instance.merged_dir)
        assert len(orphans) == 1  # a sandbox nobody recorded
    finally:
        _kill9(launcher)

    report = recover()
    assert report.terminated == [instance_id]
    after = instances.get(instance_id)
    assert after.state == "terminated" and after.state_reason_code == "Server.InternalError"
    assert "launch interrupted" in (after.state_reason or "")
    assert not _mounted(instance.dir) and not instance.dir.exists()
    assert procs.wait_gone(orphans, 5.0)


def test_a_dead_sandbox_leaves_ebs_stopped_and_instance_store_terminated(busybox_rootfs: Path) -> None:
    ebs = instances.launch([busybox_rootfs])
    ephemeral = instances.launch([busybox_rootfs], root_device_type="instance-store")
    exec_in(ebs.id, ["sh", "-c", "echo kept > /root/data"])
    for instance in (ebs, ephemeral):
        os.kill(instance.init.pid, signal.SIGKILL)  # the sandbox dies (host reboot, OOM kill, ...)
    assert procs.wait_gone([ebs.init, ephemeral.init], 5.0)

    report = recover()
    assert report.stopped == [ebs.id] and report.terminated == [ephemeral.id]
    assert str(ebs.merged_dir) in report.unmounted or not _mounted(ebs.merged_dir)
    assert not _mounted(ebs.dir) and not _mounted(ephemeral.dir)
    stopped = instances.get(ebs.id)
    assert stopped.state == "stopped" and stopped.state_reason_code == "Server.InternalError"
    assert not ephemeral.dir.exists()
    assert instances.start(ebs.id).state == "running"
    assert exec_in(ebs.id, ["cat", "/root/data"]).stdout == "kept\n"
    instances.terminate(ebs.id)


def test_a_reused_pid_does_not_pass_for_the_sandbox(busybox_rootfs: Path) -> None:
    instance = instances.launch([busybox_rootfs])
    with session() as db:  # as if the recorded pid now belonged to another process
        db.get(InstanceRecord, instance.id).init_start_time = instance.init.start_time - 1
    report = recover()
    assert report.stopped == [instance.id]
    assert not _mounted(instance.merged_dir)
    assert procs.wait_gone([instance.init], 5.0)  # the real sandbox was found and stopped too
    instances.terminate(instance.id)


def test_recover_unmounts_stray_mounts_under_the_instances_dir(
    tmp_path: Path, layer, kiln_home: Path
) -> None:
    from kiln.db.engine import get_engine
    from kiln.runtime import overlay

    get_engine()  # opening the database runs recovery once; the stray mount comes after it
    base = layer("base", {"f": "x"})
    stray = kiln_home / "instances" / "i-0123456789abcdef0"
    for name in ("upper", "work", "merged"):
        (stray / name).mkdir(parents=True)
    overlay.mount([base], stray / "upper", stray / "work", stray / "merged")
    report = recover()
    assert report.unmounted == [str(stray / "merged")]
    assert not _mounted(stray)


def test_work_in_progress_is_refused_and_abandoned_work_is_taken_over(busybox_rootfs: Path) -> None:
    instance = instances.launch([busybox_rootfs])
    worker = subprocess.Popen(["sleep", "60"])  # stands for another kiln process stopping it
    try:
        started = procs.identify(worker.pid)
        with session() as db:
            row = db.get(InstanceRecord, instance.id)
            row.state, row.transition = "stopping", "stop"
            row.busy_pid, row.busy_start_time = started.pid, started.start_time
        with pytest.raises(IncorrectInstanceState, match="busy"):
            instances.terminate(instance.id)
        assert recover().stopped == []  # left alone while its worker lives
        assert _mounted(instance.merged_dir)
    finally:
        worker.kill()
        worker.wait()
    stopped = instances.stop(instance.id)  # the abandoned stop is finished, then stop is a no-op
    assert stopped.state == "stopped" and "stop interrupted" in (stopped.state_reason or "")
    assert not _mounted(instance.merged_dir)
    assert procs.wait_gone([instance.init], 5.0)
    instances.terminate(instance.id)
