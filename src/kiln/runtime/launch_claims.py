"""A VM launch's claim on its instance directory before the database knows the instance.

A VM launch makes the instance's files and starts QEMU first, and records the instance while QEMU sets
up the machine (the record then names QEMU's pid): the database work overlaps QEMU's instead of coming
before it. A launch killed in between leaves a directory no record names, and maybe a QEMU. The launch
holds an advisory lock (``instances/.launch-<id>``, taken before the directory is made) until it
returns; :func:`sweep`, run by recovery, removes what a launch left that no record names and no live
launch holds: the directory, the instance-store scratch directory, and every process started with
QEMU's ``-name kiln-<id>``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from kiln.home import instances_dir, kiln_home
from kiln.runtime import procs

PREFIX = ".launch-"


def _lock_path(instance_id: str) -> Path:
    return instances_dir() / f"{PREFIX}{instance_id}"


@contextlib.contextmanager
def claim(instance_id: str) -> Iterator[None]:
    """Hold the launch's claim on ``instances/<instance_id>`` (make it within)."""
    path = _lock_path(instance_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


@contextlib.contextmanager
def _unheld(instance_id: str) -> Iterator[bool]:
    """True (and the claim held by this process within) when no live launch holds it."""
    path = _lock_path(instance_id)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def processes_named(instance_id: str) -> list[procs.ProcessId]:
    """Processes started as QEMU for ``instance_id`` (also a wrapper not yet exec'd into it)."""
    return procs.with_argument("-name", f"kiln-{instance_id}")


def _stop_named(instance_id: str) -> None:
    """Kill them until none is left (QEMU's first process may fork its daemon meanwhile)."""
    while found := processes_named(instance_id):
        for process in found:
            procs.kill_and_wait(process)


def sweep(recorded: Callable[[Iterable[str]], set[str]]) -> list[str]:
    """Remove what killed launches left (see the module's docstring); ``recorded`` answers which of the
    ids given the database knows. Returns the ids whose leftovers went."""
    root = instances_dir()
    if not root.is_dir():
        return []
    entries = [entry.name for entry in root.iterdir()]
    claims = {name.removeprefix(PREFIX) for name in entries if name.startswith(PREFIX)}
    candidates = sorted({name for name in entries if not name.startswith(".") and (root / name).is_dir()} | claims)
    known = recorded(candidates) if candidates else set()
    unknown = [name for name in candidates if name not in known]
    removed = []
    for instance_id in unknown:
        with _unheld(instance_id) as free:
            if not free or recorded([instance_id]):  # a live launch, or one that recorded meanwhile
                continue
            _stop_named(instance_id)
            left = [path for path in (root / instance_id, kiln_home() / "scratch" / instance_id) if path.exists()]
            for path in left:
                shutil.rmtree(path, ignore_errors=True)
            if left:
                removed.append(instance_id)
    return removed
