"""Flattening an image's layer dirs into one tree (whiteouts and opaque dirs honoured)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

OPAQUE_XATTR = "trusted.overlay.opaque"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _copy_meta(src: str, dst: Path, st: os.stat_result) -> None:
    # chown clears setuid and security.capability, so it goes first
    os.lchown(dst, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    for name in os.listxattr(src, follow_symlinks=False):
        if name.startswith("trusted.overlay."):
            continue
        os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def apply_layer(layer: Path, dest: Path, links: dict[tuple[int, int], Path] | None = None) -> None:
    """Apply one unpacked layer dir (overlay form) on top of ``dest``."""
    links = {} if links is None else links
    dirs: list[tuple[str, Path, os.stat_result]] = []
    with os.scandir(layer) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        st = entry.stat(follow_symlinks=False)
        target = dest / entry.name
        mode = st.st_mode
        if stat.S_ISCHR(mode) and st.st_rdev == 0:
            _remove(target)
            continue
        if stat.S_ISDIR(mode):
            if os.path.lexists(target) and (target.is_symlink() or not target.is_dir()):
                _remove(target)
            if _is_opaque(entry.path) and target.is_dir():
                shutil.rmtree(target)
            target.mkdir(exist_ok=True)
            apply_layer(Path(entry.path), target, links)
            dirs.append((entry.path, target, st))
            continue
        _remove(target)
        key = (st.st_dev, st.st_ino)
        if stat.S_ISREG(mode) and st.st_nlink > 1 and key in links:
            os.link(links[key], target)
            continue
        if stat.S_ISREG(mode):
            shutil.copyfile(entry.path, target, follow_symlinks=False)
            if st.st_nlink > 1:
                links[key] = target
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(entry.path), target)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(target)
        else:
            os.mknod(target, mode, st.st_rdev)
        _copy_meta(entry.path, target, st)
    for src, target, st in dirs:
        _copy_meta(src, target, st)


def flatten_dirs(layers: list[Path], dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        apply_layer(layer, dest)
    return dest
