"""Processes a test expects gone: those that belong to an instance."""

from __future__ import annotations

import os
from pathlib import Path

from kiln.runtime import procs


def processes_of(instance_dir: Path) -> list[int]:
    """Pids of processes still running for the instance whose directory is ``instance_dir``: its id on
    their command line (QEMU's ``-name kiln-<id>``, an SSH client's ``instances/<id>/kiln_key``) or their
    working directory in (what was) that directory."""
    found = []
    for pid in procs.all_pids():
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if instance_dir.name in " ".join(procs.cmdline(pid)) or cwd.startswith(str(instance_dir)):
            found.append(pid)
    return found
