"""Crash clean-up: bring instances left behind by dead processes back to a state that is true.

:func:`recover` runs at the start of every kiln command. It leaves alone work that a live process is
doing, and for the rest:

- a launch that never finished: the instance is terminated (its directory deleted); a VM launch
  killed before it recorded the instance: its directory and processes go (``kiln.runtime.launch_claims``);
- an instance whose sandbox died (pid gone, or reused: the start time differs), or whose start,
  stop or reboot was abandoned: EBS-backed ones end ``stopped`` (root volume kept),
  instance-store-backed ones ``terminated``;
- an abandoned terminate is finished;
- overlay mounts under ``KILN_HOME/instances/`` that no running instance owns are unmounted;
- what a killed capture of a VM's disk left (its loop and overlay mounts, raw copy, upper dir) goes,
  whatever state its instance is in (``kiln.runtime.vm_capture``);
- *owned* instances (build and test instances) whose owner process died are handed back, still
  as they are: the build layer decides whether to terminate them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from kiln.ec2_errors import InvalidInstanceIDNotFound
from kiln.home import instances_dir, kiln_home
from kiln.runtime import launch_claims, netns, overlay, records, sandbox, vm_capture, vm_process
from kiln.runtime.records import (
    RUNNING,
    STOPPED,
    TERMINATED,
    Instance,
    alive,
    in_progress,
    needs_settling,
)
from kiln.runtime.teardown import LIVE_STATES, settle

log = logging.getLogger("kiln.runtime")


@dataclass
class RecoveryReport:
    stopped: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    unmounted: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)  # owned instances whose owner process died
    captures: list[str] = field(default_factory=list)  # scratch dirs of killed VM disk captures removed
    unrecorded: list[str] = field(default_factory=list)  # instances of launches killed before recording them




def _unmount_stale(report: RecoveryReport) -> None:
    root = instances_dir()
    for mount_point in overlay.mounts_under(root):
        relative = mount_point.relative_to(root).parts
        if not relative:
            continue
        try:
            instance: Instance | None = records.get(relative[0])
        except InvalidInstanceIDNotFound:
            instance = None
        if instance is not None and (
            in_progress(instance) or (instance.state == RUNNING and alive(instance.init))
        ):
            continue
        if overlay.unmount(mount_point):
            report.unmounted.append(str(mount_point))


def _clean_captures(report: RecoveryReport) -> None:
    parents = [path for root in (Path(instances_dir()), kiln_home() / "scratch") if root.is_dir()
               for path in root.iterdir() if path.is_dir()]
    for removed in vm_capture.clean_abandoned(parents):
        log.warning("removed %s, left by a killed capture of a VM's disk", removed)
        report.captures.append(str(removed))


def recover() -> RecoveryReport:
    """Settle what dead processes left behind; return what changed and the orphaned owned instances."""
    report = RecoveryReport()
    sandbox.reap_finished()
    netns.reap_finished()
    vm_process.reap_finished()
    _clean_captures(report)
    for instance_id in launch_claims.sweep(records.recorded_ids):
        log.warning("removed what the launch of %s left: it was killed before it recorded the instance", instance_id)
        report.unrecorded.append(instance_id)
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
