"""CreateImage from a VM instance, in the store's one snapshot model: the guest's root file system is
read from its (stopped) root volume and turned into an overlay upper dir over the AMI's layers, the
same thing a sandbox instance's root volume is, so the new AMI is one more layer holding only what the
guest changed (deletions as whiteouts).

The overlay is converted to a raw disk in a scratch dir, its root partition (Linux root x86-64, else
the last one) loop-mounted, and synced into an overlay mount whose lower dirs are the AMI's
layers: a file whose type, size, mtime, mode, owner and extended attributes match is left alone (so it
never reaches the upper dir), anything else is copied with its extended attributes (``user.``,
``security.capability`` …; not overlayfs's own ``trusted.overlay.``), and whatever the guest no longer
has is deleted. Names the guest hard-linked to one changed file stay links to one copy.

Everything a capture makes (the raw copy, its loop mount, the overlay mount, the upper dir) lives in a
scratch directory of the instance named after the capturing process (:func:`scratch_dir`), and the
``qemu-img`` it runs dies with it: when that process is killed (-9, power loss) recovery finds the
directory by its owner being gone and unmounts and removes it (:func:`clean_abandoned`), whatever
state the instance is in.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from kiln.errors import SystemRequirement
from kiln.runtime import overlay, procs

ROOT_X86_64 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
SECTOR = 512
SCRATCH_PREFIX = "kiln-capture-"  # then <pid>-<start time>-<random>
_SCRATCH_NAME = re.compile(rf"^{SCRATCH_PREFIX}(\d+)-(\d+)-")
_PR_SET_PDEATHSIG = 1
# looked up here, not in the forked child: dlopen there could wait forever on a loader lock another
# thread of the capturing process held at the fork
_prctl = ctypes.CDLL(None, use_errno=True).prctl


@contextlib.contextmanager
def scratch_dir(parent: Path) -> Iterator[Path]:
    """A scratch directory in ``parent`` (the instance's directory) for one capture, named after this
    process: removed, with whatever is mounted in it, when done, or by recovery once the process is gone."""
    me = procs.current()
    path = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{me.pid}-{me.start_time}-", dir=parent))
    try:
        yield path
    finally:
        remove_scratch(path)


def remove_scratch(path: Path) -> None:
    for mount_point in overlay.mounts_under(path):  # deepest first: the overlay, then the loop mount
        overlay.unmount(mount_point)
    if overlay.mounts_under(path):
        raise OSError(f"refusing to delete {path}: something is still mounted below it")
    shutil.rmtree(path, ignore_errors=True)


def abandoned(parents: Iterable[Path]) -> list[Path]:
    """The capture scratch directories in ``parents`` whose capturing process is gone."""
    found = []
    for parent in parents:
        with contextlib.suppress(OSError):
            for entry in os.scandir(parent):
                named = _SCRATCH_NAME.match(entry.name)
                if named and entry.is_dir(follow_symlinks=False) and not procs.is_alive(
                        int(named[1]), int(named[2])):
                    found.append(Path(entry.path))
    return found


def clean_abandoned(parents: Iterable[Path]) -> list[Path]:
    """Unmount and remove what killed captures left in ``parents``; the directories removed."""
    removed = []
    for path in abandoned(parents):
        remove_scratch(path)
        removed.append(path)
    return removed


def _die_with_parent() -> None:
    """In the child: SIGKILL when the capturing thread's process dies (a build killed with -9 leaves no
    ``qemu-img`` writing into a directory recovery removes)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _run(argv: list[str], what: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, preexec_fn=_die_with_parent)
    if done.returncode != 0:
        raise SystemRequirement(f"{what} failed: {done.stderr.strip()[:400]}")
    return done.stdout


def _root_partition(raw: Path) -> tuple[int, int]:
    """(offset, size) in bytes of the disk's root partition, read from its GPT."""
    with open(raw, "rb") as disk:
        disk.seek(SECTOR)
        header = disk.read(92)
        if header[:8] != b"EFI PART":
            raise SystemRequirement(f"the root volume {raw.name} has no GPT partition table")
        entries_lba, count, size = struct.unpack_from("<QII", header, 72)
        disk.seek(entries_lba * SECTOR)
        table = disk.read(count * size)
    found = []
    for index in range(count):
        entry = table[index * size:(index + 1) * size]
        kind = uuid.UUID(bytes_le=entry[:16])
        first, last = struct.unpack_from("<QQ", entry, 32)
        if kind.int:
            found.append((str(kind).upper(), first * SECTOR, (last - first + 1) * SECTOR))
    if not found:
        raise SystemRequirement(f"the root volume {raw.name} has no partitions")
    return next(((o, n) for kind, o, n in found if kind == ROOT_X86_64), found[-1][1:])


@contextlib.contextmanager
def guest_root(volume: Path, scratch: Path) -> Iterator[Path]:
    """The root file system of the qcow2 ``volume``, a copy mounted under ``scratch``."""
    raw = scratch / "root.raw"
    # -U: a running VM's volume too (CreateImage with NoReboot: crash-consistent, as on EC2)
    _run(["qemu-img", "convert", "-q", "-U", "-O", "raw", str(volume), str(raw)], "qemu-img convert")
    offset, size = _root_partition(raw)
    mount_point = scratch / "guest"
    mount_point.mkdir()
    # read and write (a throwaway copy): ext4 replays its journal after a crash, which a read-only
    # loop device refuses
    _run(["mount", "-t", "ext4", "-o", f"noatime,loop,offset={offset},sizelimit={size}", str(raw), str(mount_point)],
         "mounting the root volume")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-d", str(mount_point)], check=False, capture_output=True)
        raw.unlink(missing_ok=True)


OVERLAY_XATTRS = "trusted.overlay."  # overlayfs's own: neither visible through the mount nor settable


def xattrs(path: Path) -> dict[str, bytes]:
    """``path``'s extended attributes (not following a symlink), without overlayfs's own."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:  # a file system without them, or a symlink where they are not supported
        return {}
    return {name: os.getxattr(path, name, follow_symlinks=False) for name in names
            if not name.startswith(OVERLAY_XATTRS)}


def _set_xattrs(dest: Path, wanted: dict[str, bytes]) -> None:
    have = xattrs(dest)
    for name in set(have) - set(wanted):
        os.removexattr(dest, name, follow_symlinks=False)
    for name, value in wanted.items():
        if have.get(name) != value:
            os.setxattr(dest, name, value, follow_symlinks=False)


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return False
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    if stat.S_ISREG(a.st_mode):
        return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns
    if stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode):
        return a.st_rdev == b.st_rdev
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _copy(source: Path, dest: Path, info: os.stat_result) -> None:
    """``dest`` made like ``source`` (not a directory's contents), extended attributes too."""
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        dest.mkdir()
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(source), dest)
    elif stat.S_ISREG(mode):
        shutil.copyfile(source, dest, follow_symlinks=False)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(dest)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        os.mknod(dest, mode, info.st_rdev)
    else:  # sockets: not content
        return
    _metadata(dest, info, xattrs(source))


def _metadata(dest: Path, info: os.stat_result, wanted_xattrs: dict[str, bytes] | None = None) -> None:
    os.chown(dest, info.st_uid, info.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(info.st_mode):
        os.chmod(dest, stat.S_IMODE(info.st_mode))
    if wanted_xattrs is not None:  # after chown, which drops security.capability
        _set_xattrs(dest, wanted_xattrs)
    os.utime(dest, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)


NOT_CONTENT = {"lost+found"}  # at the top of the guest's file system: made by mkfs, not the image's


def sync_tree(source: Path, dest: Path) -> None:
    """Make ``dest`` (an overlay mount) hold exactly what ``source`` holds, touching only what differs."""
    copied: dict[tuple[int, int], Path] = {}  # a hard-linked file copied once: its inode → the copy
    for directory, names, files in os.walk(source, topdown=True):
        here = Path(directory)
        there = dest / here.relative_to(source)
        wanted = set(names) | set(files)
        if here == source:
            wanted -= NOT_CONTENT
            names[:] = [name for name in names if name not in NOT_CONTENT]
        for gone in sorted(set(os.listdir(there)) - wanted):
            _remove(there / gone)
        kept_dirs = []
        for name in sorted(wanted):
            info = os.lstat(here / name)
            try:
                have: os.stat_result | None = os.lstat(there / name)
            except FileNotFoundError:
                have = None
            inode = (info.st_dev, info.st_ino)
            if stat.S_ISREG(info.st_mode) and info.st_nlink > 1 and inode in copied:
                # another name of a file copied already: a link to that copy, as in the guest
                if have is not None:
                    _remove(there / name)
                os.link(copied[inode], there / name)
                continue
            if have is not None and stat.S_IFMT(have.st_mode) == stat.S_IFMT(info.st_mode) and (
                    stat.S_ISDIR(info.st_mode) or (_same(info, have) and xattrs(here / name) == xattrs(there / name))):
                if stat.S_ISDIR(info.st_mode):
                    kept_dirs.append(name)
                elif stat.S_ISLNK(info.st_mode) and os.readlink(here / name) != os.readlink(there / name):
                    _remove(there / name)
                    _copy(here / name, there / name, info)
                continue
            if have is not None:
                _remove(there / name)
            _copy(here / name, there / name, info)
            if stat.S_ISDIR(info.st_mode):
                kept_dirs.append(name)
            elif stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                copied[inode] = there / name
        names[:] = kept_dirs  # walk into directories (new ones are filled by the walk too)
    # directories' own metadata last: filling them changed their mtimes
    for directory, names, _ in os.walk(source):
        if Path(directory) == source:
            names[:] = [name for name in names if name not in NOT_CONTENT]
        for name in names:
            mine, theirs = Path(directory) / name, dest / Path(directory).relative_to(source) / name
            info, have = os.lstat(mine), os.lstat(theirs)
            wanted_xattrs = xattrs(mine)
            if (info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns) != (
                    have.st_mode, have.st_uid, have.st_gid, have.st_mtime_ns) or wanted_xattrs != xattrs(theirs):
                _metadata(theirs, info, wanted_xattrs)


def capture_upper(volume: Path, lower_dirs: Sequence[Path], upper: Path) -> Path:
    """Fill the empty dir ``upper`` with what the guest's root file system on ``volume`` changed
    against ``lower_dirs`` (the AMI's layers, base first); returns ``upper``."""
    with scratch_dir(upper.parent) as scratch:
        work, merged = scratch / "work", scratch / "merged"
        work.mkdir()
        merged.mkdir()
        with guest_root(volume, scratch) as guest:
            overlay.mount(list(lower_dirs), upper, work, merged)
            try:
                sync_tree(guest, merged)
            finally:
                overlay.unmount(merged)
    return upper
