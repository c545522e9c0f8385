"""Reading files through a stack of unpacked layer dirs as overlayfs would show them, mounting nothing.

Layers are in overlay form (``kiln.store.unpack``, or an instance's upper dir): a whiteout is a char
device 0/0, an opaque dir carries ``trusted.overlay.opaque=y`` (or ``user.overlay.opaque``). Symlinks
are followed inside the merged view (an absolute target restarts at its root; ``..`` never climbs
above it), so nothing outside the layers is ever read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from kiln.store.layers import OPAQUE_XATTRS

MAX_SYMLINKS = 40


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


class LayerView:
    """The merged tree of ``layers`` (base first, as ``kiln.store.api.layer_dirs`` answers them)."""

    def __init__(self, layers: Sequence[Path]) -> None:
        self.top_down = [Path(layer) for layer in reversed(layers)]

    def _dir_stack(self, parts: list[str]) -> list[Path]:
        """The real dirs that make up the merged dir at ``parts`` (already resolved), top first."""
        stack = list(self.top_down)
        for part in parts:
            below: list[Path] = []
            for directory in stack:
                candidate = directory / part
                st = _lstat(candidate)
                if st is None:
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    break  # a file, link or whiteout here hides every lower layer's entry
                below.append(candidate)
                if _is_opaque(candidate):
                    break
            stack = below
            if not stack:
                break
        return stack

    def _entry(self, stack: list[Path], name: str) -> tuple[Path, os.stat_result] | None:
        for directory in stack:
            candidate = directory / name
            st = _lstat(candidate)
            if st is not None:
                return None if _is_whiteout(st) else (candidate, st)
        return None

    def resolve(self, path: str) -> tuple[list[str], Path | None, list[Path]]:
        """(the resolved logical parts, the real path of the entry or None, its dir stack if a dir)."""
        pending = [p for p in PurePosixPath("/", path).parts[1:]]
        resolved: list[str] = []
        stack = list(self.top_down)
        links = 0
        found: Path | None = None
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                stack = self._dir_stack(resolved)
                continue
            entry = self._entry(stack, part)
            if entry is None:
                return [*resolved, part], None, []
            real, st = entry
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(f"too many levels of symbolic links resolving {path!r}")
                target = os.readlink(real)
                if target.startswith("/"):
                    resolved = []
                pending = [p for p in PurePosixPath(target).parts if p != "/"] + pending
                stack = self._dir_stack(resolved)
                continue
            resolved.append(part)
            found = real
            if stat.S_ISDIR(st.st_mode):
                stack = self._dir_stack(resolved)
            elif pending:
                return resolved + pending, None, []
            else:
                stack = []
        if not resolved:
            return [], None, stack
        return resolved, found, stack

    def file(self, path: str) -> Path | None:
        """The real path of the regular file the merged tree has at ``path``, or None."""
        _, real, _ = self.resolve(path)
        if real is None:
            return None
        st = _lstat(real)
        return real if st is not None and stat.S_ISREG(st.st_mode) else None

    def read_bytes(self, path: str) -> bytes | None:
        real = self.file(path)
        return real.read_bytes() if real is not None else None

    def listdir(self, path: str) -> list[str]:
        """The names the merged dir at ``path`` holds (whiteouts hide lower names), sorted; [] if none."""
        parts, real, stack = self.resolve(path)
        if (real is None and parts) or not stack:
            return []
        names: set[str] = set()
        hidden: set[str] = set()
        for directory in stack:
            with os.scandir(directory) as scan:
                for entry in scan:
                    if entry.name in names or entry.name in hidden:
                        continue
                    if _is_whiteout(entry.stat(follow_symlinks=False)):
                        hidden.add(entry.name)
                    else:
                        names.add(entry.name)
        return sorted(names)
