"""Crash clean-up: bring instances left behind by dead processes back to a state that is true.

:func:`recover` runs at the start of every kiln command. It leaves alone work that a live process is
doing, and for the rest:

- a launch that never finished: the instance is terminated (its directory deleted);
- an instance whose sandbox died (pid gone, or reused: the start time differs), or whose start,
  stop or reboot was abandoned: EBS-backed ones end ``stopped`` (root volume kept),
  instance-store-backed ones ``terminated``;
- an abandoned terminate is finished;
- overlay mounts under ``KILN_HOME/instances/`` that no running instance owns are unmounted;
- *owned* instances (build and test instances) whose owner process died are handed back, still
  as they are: the build layer decides whether to terminate them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from kiln.home import instances_dir
from kiln.runtime import overlay, records, sandbox
from kiln.runtime.errors import IncorrectInstanceState, InstanceNotFound
from kiln.runtime.instances import NO_PROCESS, release
from kiln.runtime.records import (
    PENDING,
    RUNNING,
    SHUTTING_DOWN,
    STOPPED,
    STOPPING,
    TERMINATED,
    Instance,
    alive,
    in_progress,
    needs_settling,
)

log = logging.getLogger("kiln.runtime")
LIVE_STATES = (PENDING, RUNNING, STOPPING, STOPPED, SHUTTING_DOWN)


@dataclass
class RecoveryReport:
    stopped: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    unmounted: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)  # owned instances whose owner process died


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


def _unmount_stale(report: RecoveryReport) -> None:
    root = instances_dir()
    for mount_point in overlay.mounts_under(root):
        relative = mount_point.relative_to(root).parts
        if not relative:
            continue
        try:
            instance: Instance | None = records.get(relative[0])
        except InstanceNotFound:
            instance = None
        if instance is not None and (
            in_progress(instance) or (instance.state == RUNNING and alive(instance.init))
        ):
            continue
        if overlay.unmount(mount_point):
            report.unmounted.append(str(mount_point))


def recover() -> RecoveryReport:
    """Settle what dead processes left behind; return what changed and the orphaned owned instances."""
    report = RecoveryReport()
    sandbox.reap_finished()
    for instance in records.select(states=LIVE_STATES):
        if in_progress(instance) or not needs_settling(instance):
            continue
        state = settle(instance)
        if state == STOPPED:
            report.stopped.append(instance.id)
        elif state == TERMINATED:
            report.terminated.append(instance.id)
        if state is not None:
            log.warning("instance %s was left %s; now %s", instance.id, instance.state, state)
    if Path(instances_dir()).is_dir():
        _unmount_stale(report)
    for instance in records.select(states=LIVE_STATES):
        if instance.owned and not alive(instance.owner) and not in_progress(instance):
            report.orphaned.append(instance.id)
    return report
