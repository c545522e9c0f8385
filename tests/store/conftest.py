from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiln.home import region_dir
from kiln.store import api


@pytest.fixture
def base_ami(busybox_dir: Path) -> str:
    """``busybox_dir`` (the session's busybox tree, tests/conftest.py) imported into this test's store."""
    return api.import_rootfs(busybox_dir, name="busybox-base")


def _blob_files(region: str = "local") -> dict[str, int]:
    """The blob files actually on disk: digest -> size."""
    root = region_dir(region) / "blobs" / "sha256"
    return {"sha256:" + p.name: p.stat().st_size for p in root.iterdir()}


@pytest.fixture
def blob_files() -> Callable[..., dict[str, int]]:
    return _blob_files


def xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {name: os.getxattr(path, name, follow_symlinks=False) for name in sorted(names)}


def signature(root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything a layer dir means to overlayfs and to kiln, per entry (atimes aside)."""
    entries: dict[str, tuple[Any, ...]] = {}
    inodes: dict[int, str] = {}
    top = os.lstat(root)
    entries["."] = ("root", stat.S_IMODE(top.st_mode), top.st_uid, top.st_gid, xattrs(str(root)))
    for directory, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                entries[relative] = ("whiteout",)  # only its existence is meaningful
                continue
            content: Any = None
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                link_group = inodes.setdefault(st.st_ino, relative)
                content = (content, link_group)
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            entries[relative] = (
                stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                st.st_mtime_ns, st.st_rdev, content, xattrs(path),
            )  # fmt: skip
    return entries
