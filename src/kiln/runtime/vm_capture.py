"""CreateImage from a VM instance, in the store's one snapshot model: the guest's root file system is
read from its (stopped) root volume and turned into an overlay upper dir over the AMI's layers, the
same thing a sandbox instance's root volume is, so the new AMI is one more layer holding only what the
guest changed (deletions as whiteouts).

The overlay is converted to a raw disk in a scratch dir, its root partition (Linux root x86-64, else
the last one) loop-mounted, and synced into an overlay mount whose lower dirs are the AMI's
layers: a file whose type, size, mtime, mode and owner match is left alone (so it never reaches the
upper dir), anything else is copied, and whatever the guest no longer has is deleted. Extended
attributes and hard links of changed files are not carried over.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from kiln.errors import SystemRequirement
from kiln.runtime import overlay

ROOT_X86_64 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
SECTOR = 512


def _run(argv: list[str], what: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
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
    """``dest`` made like ``source`` (not a directory's contents)."""
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
    _metadata(dest, info)


def _metadata(dest: Path, info: os.stat_result) -> None:
    os.chown(dest, info.st_uid, info.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(info.st_mode):
        os.chmod(dest, stat.S_IMODE(info.st_mode))
    os.utime(dest, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)


NOT_CONTENT = {"lost+found"}  # at the top of the guest's file system: made by mkfs, not the image's


def sync_tree(source: Path, dest: Path) -> None:
    """Make ``dest`` (an overlay mount) hold exactly what ``source`` holds, touching only what differs."""
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
            if have is not None and stat.S_IFMT(have.st_mode) == stat.S_IFMT(info.st_mode) and (
                    stat.S_ISDIR(info.st_mode) or _same(info, have)):
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
        names[:] = kept_dirs  # walk into directories (new ones are filled by the walk too)
    # directories' own metadata last: filling them changed their mtimes
    for directory, names, _ in os.walk(source):
        if Path(directory) == source:
            names[:] = [name for name in names if name not in NOT_CONTENT]
        for name in names:
            info, have = os.lstat(Path(directory) / name), os.lstat(dest / Path(directory).relative_to(source) / name)
            if (info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns) != (
                    have.st_mode, have.st_uid, have.st_gid, have.st_mtime_ns):
                _metadata(dest / Path(directory).relative_to(source) / name, info)


def capture_upper(volume: Path, lower_dirs: Sequence[Path], upper: Path) -> Path:
    """Fill the empty dir ``upper`` with what the guest's root file system on ``volume`` changed
    against ``lower_dirs`` (the AMI's layers, base first); returns ``upper``."""
    with tempfile.TemporaryDirectory(prefix="kiln-capture-", dir=upper.parent) as scratch_name:
        scratch = Path(scratch_name)
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
