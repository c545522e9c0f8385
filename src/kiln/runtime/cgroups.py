"""CPU and memory limits for instances through cgroups, when the host lets kiln manage them.

cgroup v2 (``/sys/fs/cgroup`` is cgroup2 with the cpu and memory controllers): ``kiln/<instance-id>``
under the cgroup2 root, with ``memory.max`` and ``cpu.max``.

cgroup v1 (hybrid hosts, e.g. containers where the controllers are bound to v1 hierarchies): a
``kiln/<instance-id>`` group in the memory and cpu hierarchies, *below the cgroup this kiln process
already runs in*, so instances stay inside whatever limits their caller has. ``memory.limit_in_bytes``
and ``cpu.cfs_quota_us``.

Otherwise limits are recorded on the instance and not enforced (a warning is logged). Processes join
the groups at birth: the sandbox and every exec start through a tiny ``sh`` that writes its own pid
to ``cgroup.procs`` and then execs the real command, so nothing runs outside the limits.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("kiln.runtime")

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000
_JOIN_SCRIPT = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'


@dataclass(frozen=True)
class Limits:
    vcpus: int
    memory_bytes: int


def _v2_usable() -> bool:
    controllers = CGROUP_ROOT / "cgroup.controllers"
    try:
        available = controllers.read_text().split()
    except OSError:
        return False
    return {"cpu", "memory"} <= set(available) and os.access(CGROUP_ROOT, os.W_OK)


def _v1_mounts() -> dict[str, tuple[Path, str]]:
    """controller -> (mount point, mount root) of each cgroup v1 hierarchy."""
    found: dict[str, tuple[Path, str]] = {}
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            head, _, tail = line.partition(" - ")
            fstype, _source, options = ([*tail.split(), "", "", ""])[:3]
            if fstype != "cgroup":
                continue
            fields = head.split()
            for option in options.split(","):
                if option in ("cpu", "memory"):
                    found.setdefault(option, (Path(fields[4]), fields[3]))
    return found


def _own_v1_path(controller: str) -> str | None:
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _id, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    return None


def _v1_parents() -> dict[str, Path] | None:
    mounts = _v1_mounts()
    parents: dict[str, Path] = {}
    for controller in ("memory", "cpu"):
        if controller not in mounts:
            return None
        mount_point, mount_root = mounts[controller]
        own = _own_v1_path(controller)
        if own is None:
            return None
        relative = os.path.relpath(own, mount_root) if own.startswith(mount_root) else own.lstrip("/")
        parent = (mount_point / relative).resolve() if relative != "." else mount_point
        if not os.access(parent, os.W_OK):
            return None
        parents[controller] = parent / "kiln"
    return parents


def backend() -> str | None:
    """``"v2"``, ``"v1"`` or None: which cgroup interface kiln can use on this host."""
    if _v2_usable():
        return "v2"
    if _v1_parents() is not None:
        return "v1"
    return None


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _create_v2(instance_id: str, limits: Limits) -> list[Path]:
    parent = CGROUP_ROOT / "kiln"
    parent.mkdir(exist_ok=True)
    for where in (CGROUP_ROOT, parent):
        _write(where / "cgroup.subtree_control", "+cpu +memory")
    group = parent / instance_id
    group.mkdir(exist_ok=True)
    _write(group / "memory.max", str(limits.memory_bytes))
    _write(group / "cpu.max", f"{limits.vcpus * CPU_PERIOD_US} {CPU_PERIOD_US}")
    return [group]


def _create_v1(instance_id: str, limits: Limits) -> list[Path]:
    parents = _v1_parents()
    assert parents is not None
    groups = []
    try:
        for controller, parent in parents.items():
            parent.mkdir(exist_ok=True)
            group = parent / instance_id
            group.mkdir(exist_ok=True)
            groups.append(group)
            if controller == "memory":
                _write(group / "memory.limit_in_bytes", str(limits.memory_bytes))
            else:
                _write(group / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(group / "cpu.cfs_quota_us", str(limits.vcpus * CPU_PERIOD_US))
    except OSError:
        remove(groups)
        raise
    return groups


def create(instance_id: str, limits: Limits) -> list[Path]:
    """Make the instance's cgroups with ``limits``; [] when limits cannot be enforced here."""
    kind = backend()
    try:
        if kind == "v2":
            return _create_v2(instance_id, limits)
        if kind == "v1":
            return _create_v1(instance_id, limits)
    except OSError as error:
        log.warning("cgroup limits for %s not enforced: %s", instance_id, error)
        return []
    log.warning("cgroup limits for %s not enforced: no writable cgroup cpu+memory controllers", instance_id)
    return []


def join_argv(groups: Sequence[Path | str], argv: Sequence[str]) -> list[str]:
    """``argv`` wrapped so the process joins ``groups`` before it runs (unchanged if no groups)."""
    if not groups:
        return list(argv)
    procs = [str(Path(group) / "cgroup.procs") for group in groups]
    return ["/bin/sh", "-c", _JOIN_SCRIPT, "kiln-cgroup-join", *procs, "--", *argv]


def members(groups: Sequence[Path | str]) -> set[int]:
    pids: set[int] = set()
    for group in groups:
        try:
            pids.update(int(x) for x in (Path(group) / "cgroup.procs").read_text().split())
        except FileNotFoundError:
            continue
    return pids


def remove(groups: Sequence[Path | str], timeout: float = 2.0) -> None:
    """Remove the instance's cgroups (they must be empty; exiting processes get a moment to leave)."""
    deadline = time.monotonic() + timeout
    for group in groups:
        while True:
            try:
                os.rmdir(group)
                break
            except FileNotFoundError:
                break
            except OSError as error:
                if time.monotonic() >= deadline:
                    log.warning("could not remove cgroup %s: %s", group, error)
                    break
                time.sleep(0.01)
