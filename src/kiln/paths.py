"""Resolve a path *inside* a root directory the way the kernel would after chroot(root).

Symlinks are followed relative to the root (an absolute target restarts at the root, ``..`` never
climbs above it), so the result always lies under ``root``. Used to reach files of an instance or an
unpacked layer from the host without following links out of it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

MAX_SYMLINKS = 40


def resolve_in_root(root: Path, path: str, *, follow_final: bool = True) -> Path:
    root = Path(root)
    pending = [part for part in PurePosixPath("/", path).parts[1:]]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        is_last = not pending
        try:
            mode = os.lstat(candidate).st_mode
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(mode) and (follow_final or not is_last):
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(f"too many levels of symbolic links resolving {path!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = [p for p in PurePosixPath(target).parts if p != "/"] + pending
            continue
        resolved.append(part)
    return root.joinpath(*resolved)
