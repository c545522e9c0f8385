"""Ending an instance's processes and mounts, and settling an instance a dead process left behind.

Shared by the instance life cycle (``instances``) and crash clean-up (``recovery``).
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
from collections.abc import Callable
from pathlib import Path

from kiln.ec2_errors import IncorrectInstanceState
from kiln.runtime import cgroups, netns, overlay, procs, records, sandbox, vm_process
from kiln.runtime.records import PENDING, RUNNING, SHUTTING_DOWN, STOPPED, STOPPING, TERMINATED, Instance

STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL on stop and terminate
MOUNT_STUBS = ("etc/resolv.conf",)
NO_PROCESS = {"init_pid": None, "init_start_time": None, "monitor_pid": None, "monitor_start_time": None}
LIVE_STATES = (PENDING, RUNNING, STOPPING, STOPPED, SHUTTING_DOWN)


def halt(instance: Instance, grace: float = STOP_GRACE) -> None:
    """Kill every process of the instance: SIGTERM, ``grace`` seconds, then SIGKILL its pid 1.

    The sleeper that holds the namespaces is spared the SIGTERM, so services get the whole grace
    period; killing the namespace's pid 1 then takes everything left with it.
    """
    init = instance.init
    if init is not None and not procs.is_alive(init.pid, init.start_time):
        init = None
    if init is not None and grace > 0:
        namespace = procs.pidns_inode(init.pid)
        members = [procs.identify(pid) for pid in procs.pids_in_pidns(namespace)] if namespace else []
        others = [p for p in members if p is not None and procs.ns_pid(p.pid) not in (1, 2)]
        for process in others:
            procs.send(process.pid, signal.SIGTERM)
        procs.wait_gone(others, grace)
    if init is not None:
        procs.kill_and_wait(init)
    monitors = sandbox.find_monitors(instance.merged_dir)
    if instance.monitor is not None and instance.monitor not in monitors:
        monitors.append(instance.monitor)
    for monitor in monitors:
        sandbox.kill(monitor)
    netns.stop(instance.network_helper)
    # Left in the cgroups: host-side nsenter parents of commands that just died.
    for pid in cgroups.members(instance.cgroups):
        identity = procs.identify(pid)
        if identity is not None:
            procs.kill_and_wait(identity)
    cgroups.remove(instance.cgroups)


Salvage = Callable[[Instance], None]


def release(
    instance: Instance, *, grace: float = STOP_GRACE, delete: bool, salvage: Salvage | None = None
) -> None:
    """Stop the instance's processes, unmount its root, and with ``delete`` remove its directory.

    ``salvage`` (with ``delete``) is called once the root volume is unmounted and before it is
    deleted; it may move the upper dir away (a build hands it to the image store).
    """
    if instance.vm is not None:
        _release_vm(instance, grace=grace, delete=delete, salvage=salvage)
        return
    halt(instance, grace)
    overlay.unmount(instance.merged_dir)
    if instance.console_log.exists() and not delete:
        sandbox.console_line(instance.console_log, "processes ended, root volume unmounted")
    if delete:
        if salvage is not None:
            salvage(instance)
        remove_dir(instance.dir)
    else:
        _remove_mount_stubs(instance)


def _release_vm(instance: Instance, *, grace: float, delete: bool, salvage: Salvage | None) -> None:
    """A VM: power off (the guest gets :data:`vm_process.POWERDOWN_GRACE` unless ``grace`` is 0); with
    ``delete`` its root volume goes too, unless its ``DeleteOnTermination`` is false: then the overlay
    is kept at ``kept_root``."""
    vm = instance.vm or {}
    vm_process.halt(instance, vm_process.POWERDOWN_GRACE if grace > 0 else 0)
    if not delete:
        return
    if salvage is not None:
        salvage(instance)
    root = Path(vm["root"])
    if not vm.get("delete_on_termination", True) and root.exists():
        kept = Path(vm["kept_root"])
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.replace(root, kept)
    if vm.get("scratch"):
        shutil.rmtree(vm["scratch"], ignore_errors=True)
    remove_dir(instance.dir)


def _remove_mount_stubs(instance: Instance) -> None:
    """Drop the empty mount point bwrap created for the instance's resolv.conf in an image without one.

    It is not the instance's data and must not end up in its root volume or a captured image.
    """
    if instance.network != "host":
        return
    for relative in MOUNT_STUBS:
        stub = instance.upper_dir / relative
        try:
            info = os.lstat(stub)
        except (FileNotFoundError, NotADirectoryError):
            continue
        in_layers = any(os.path.lexists(layer / relative) for layer in instance.lower_dirs)
        if stat.S_ISREG(info.st_mode) and info.st_size == 0 and not in_layers:
            stub.unlink()


def remove_dir(directory: Path) -> None:
    """Delete an instance directory, never through a mount that is still there."""
    for mount_point in overlay.mounts_under(directory):
        overlay.unmount(mount_point)
    if overlay.mounts_under(directory):
        raise OSError(f"refusing to delete {directory}: something is still mounted below it")
    shutil.rmtree(directory, ignore_errors=False, onerror=_ignore_missing)


def _ignore_missing(function: object, path: str, info: object) -> None:
    error = info[1] if isinstance(info, tuple) else info
    if not isinstance(error, FileNotFoundError):
        raise error  # type: ignore[misc]


def settle(instance: Instance) -> str | None:
    """Settle one instance nobody is working on; returns its new state, or None if untouched."""
    try:
        before = records.claim(instance.id, allowed=LIVE_STATES, state=None, transition="recover")
    except IncorrectInstanceState:
        return None  # a live process claimed it meanwhile
    if before.state == SHUTTING_DOWN or before.transition in ("launch", "terminate"):
        terminate, reason = True, f"{before.transition or 'terminate'} interrupted"
    elif before.state == STOPPING or before.transition == "stop":
        terminate, reason = False, "stop interrupted"
    elif before.state == STOPPED:
        terminate, reason = False, None
    else:
        terminate = before.root_device_type == "instance-store"
        reason = f"{before.transition} interrupted" if before.transition else "the instance's processes ended"
    try:
        release(before, grace=0, delete=terminate)
    except BaseException:
        records.update(instance.id)
        raise
    fields: dict[str, object] = {"state": TERMINATED if terminate else STOPPED, **NO_PROCESS}
    if reason:
        fields["state_reason_code"] = "Server.InternalError"
        fields["state_reason"] = f"Server.InternalError: {reason}"
    return records.update(instance.id, **fields).state
