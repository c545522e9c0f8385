"""Overlayfs mounts for instance root volumes, made with the mount syscalls (no ``mount`` fork).

Options are fixed so an upper dir can be mounted again later (stop/start) and captured as a plain
layer: ``index=off`` (no inode index tying the upper to one set of lowers), ``redirect_dir=off`` and
``metacopy=off`` (renamed directories and metadata-only copies never leave xattr redirects the
image store would have to understand; a directory rename out of a lower layer fails with EXDEV and
tools fall back to copying), ``xino=off``.

A disposable root volume (a build's or a test's instance: its contents live on as the layer captured
from it, or not at all) is mounted ``volatile``: the overlay skips every sync to the upper file system,
the ``fsync`` of each file a package manager writes inside and the sync of the whole upper file system
that unmounting does otherwise (a tenth of a second and more after a package install). The kernel
then refuses to mount that upper dir again until ``work/work/incompat/volatile`` is removed, which is
safe only if the host has not restarted since (what was not written back is lost then): the host's
boot id is kept beside it, in the work dir, and checked at the next mount.

The legacy mount(2) data string is limited to one page. Longer lower lists (many layers, long
paths) go through the new mount API (fsopen/fsconfig/fsmount/move_mount) with one ``lowerdir+``
per layer, which has no length limit.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from kiln.errors import InvalidInput, KilnError, SystemRequirement
from kiln.runtime import procs

FIXED_OPTIONS = (("index", "off"), ("redirect_dir", "off"), ("metacopy", "off"), ("xino", "off"))
VOLATILE_BOOT = "kiln-volatile-boot-id"  # in the work dir: the boot of the host a volatile mount was made in
_LEGACY_LIMIT = 4000  # the kernel copies one page (4096 bytes) of mount data
_UNSAFE_IN_LEGACY = (",", ":", "\\", "\n")

# Generic syscall numbers: the same on x86_64 and arm64 for these (added in 5.2).
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432
_FSOPEN_CLOEXEC = 0x1
_FSCONFIG_SET_FLAG = 0
_FSCONFIG_SET_STRING = 1
_FSCONFIG_CMD_CREATE = 6
_FSMOUNT_CLOEXEC = 0x1
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_AT_FDCWD = -100
_MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _oserror(what: str, target: Path | str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}", str(target))


def _legacy_data(lowers_top_first: Sequence[Path], upper: Path, work: Path, volatile: bool) -> str | None:
    paths = [*map(str, lowers_top_first), str(upper), str(work)]
    if any(char in path for path in paths for char in _UNSAFE_IN_LEGACY):
        return None
    options = [f"lowerdir={':'.join(map(str, lowers_top_first))}", f"upperdir={upper}", f"workdir={work}"]
    options += [f"{key}={value}" for key, value in FIXED_OPTIONS] + (["volatile"] if volatile else [])
    data = ",".join(options)
    return data if len(data) < _LEGACY_LIMIT else None


def _fs_log(fs_fd: int) -> str:
    """Messages the kernel left on a filesystem context (e.g. why overlay refused a layer)."""
    lines = []
    while True:
        try:
            chunk = os.read(fs_fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        lines.append(chunk.decode("utf-8", "replace").strip())
    return "; ".join(lines)


def _mount_new_api(lowers_top_first: Sequence[Path], upper: Path, work: Path, target: Path, volatile: bool) -> None:
    fs_fd = _libc.syscall(_SYS_FSOPEN, b"overlay", _FSOPEN_CLOEXEC)
    if fs_fd < 0:
        raise _oserror("fsopen overlay", target)
    mount_fd = -1
    try:
        settings = [("lowerdir+", str(path)) for path in lowers_top_first]
        settings += [("upperdir", str(upper)), ("workdir", str(work)), *FIXED_OPTIONS]
        for key, value in settings:
            if _libc.syscall(_SYS_FSCONFIG, fs_fd, _FSCONFIG_SET_STRING, key.encode(), os.fsencode(value), 0):
                error = _oserror(f"overlay option {key}={value} ({_fs_log(fs_fd)})", target)
                raise error
        if volatile and _libc.syscall(_SYS_FSCONFIG, fs_fd, _FSCONFIG_SET_FLAG, b"volatile", None, 0):
            raise _oserror(f"overlay option volatile ({_fs_log(fs_fd)})", target)
        if _libc.syscall(_SYS_FSCONFIG, fs_fd, _FSCONFIG_CMD_CREATE, None, None, 0):
            raise _oserror(f"overlay create ({_fs_log(fs_fd)})", target)
        mount_fd = _libc.syscall(_SYS_FSMOUNT, fs_fd, _FSMOUNT_CLOEXEC, 0)
        if mount_fd < 0:
            raise _oserror("fsmount", target)
        if _libc.syscall(
            _SYS_MOVE_MOUNT, mount_fd, b"", _AT_FDCWD, os.fsencode(str(target)), _MOVE_MOUNT_F_EMPTY_PATH
        ):
            raise _oserror("move_mount", target)
    finally:
        if mount_fd >= 0:
            os.close(mount_fd)
        os.close(fs_fd)


def _clear_volatile(upper: Path, work: Path) -> None:
    """Let the kernel mount an upper dir last mounted volatile again, if no restart can have lost writes."""
    marker = work / "work" / "incompat" / "volatile"
    if not marker.exists():
        return
    try:
        mounted_in = (work / VOLATILE_BOOT).read_text().strip()
    except FileNotFoundError:
        mounted_in = None
    if mounted_in is None or mounted_in != procs.boot_id():
        raise KilnError(f"the root volume {upper} was mounted without syncs to disk and the host has restarted "
                        "since: what it held then may be lost, so it is not mounted again")
    shutil.rmtree(marker.parent)


def mount(lowers_base_first: Sequence[Path], upper: Path, work: Path, target: Path, *, volatile: bool = False) -> None:
    """Mount an overlay at ``target``. ``lowers_base_first`` is a layer list, base layer first;
    ``volatile``: a disposable root volume (see the module's docstring)."""
    if not lowers_base_first:
        raise InvalidInput("an instance needs at least one layer", location="lower_dirs")
    for path in lowers_base_first:
        if not Path(path).is_dir():
            raise InvalidInput(f"layer directory {path} does not exist", location="lower_dirs")
    _clear_volatile(upper, work)
    top_first = [Path(path) for path in reversed(lowers_base_first)]
    if volatile:
        (work / VOLATILE_BOOT).write_text(f"{procs.boot_id()}\n")
        try:
            _mount(top_first, upper, work, target, volatile=True)
            return
        except OSError as error:
            if error.errno != errno.EINVAL:  # EINVAL: a kernel before 5.10, without the option
                raise
        (work / VOLATILE_BOOT).unlink()
    _mount(top_first, upper, work, target, volatile=False)


def _mount(top_first: Sequence[Path], upper: Path, work: Path, target: Path, *, volatile: bool) -> None:
    data = _legacy_data(top_first, upper, work, volatile)
    if data is None:
        _mount_new_api(top_first, upper, work, target, volatile)
        return
    if _libc.mount(b"overlay", os.fsencode(str(target)), b"overlay", 0, data.encode()):
        code = ctypes.get_errno()
        if code == errno.ENODEV:
            raise SystemRequirement("the kernel has no overlayfs", hint="modprobe overlay")
        if code == errno.EPERM:
            raise SystemRequirement("mounting overlayfs needs root (CAP_SYS_ADMIN)")
        raise OSError(code, f"mount overlay: {os.strerror(code)}", str(target))


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal ``\\ooo``."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        digits = field[i + 1 : i + 4]
        if field[i] == "\\" and len(digits) == 3 and digits.isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points() -> list[Path]:
    """Every mount point in this process's mount namespace."""
    with open("/proc/self/mountinfo") as handle:
        return [Path(_unescape(line.split()[4])) for line in handle if line.strip()]


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below ``root``, deepest first (the order to unmount them in)."""
    root = Path(os.path.abspath(root))
    found = [p for p in mount_points() if p == root or root in p.parents]
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def is_mounted(target: Path) -> bool:
    return Path(os.path.abspath(target)) in mount_points()


def unmount(target: Path, *, timeout: float = 2.0) -> bool:
    """Unmount ``target`` (every stacked mount on it). Retries while busy, then detaches lazily.

    Returns True if something was unmounted; a target that is not mounted is not an error.
    """
    path = os.fsencode(str(target))
    deadline = time.monotonic() + timeout
    unmounted = False
    raced = 0
    while is_mounted(target):
        if _libc.umount2(path, 0) == 0:
            unmounted = True
            continue
        code = ctypes.get_errno()
        if code == errno.EINVAL and raced < 3:  # raced with another process unmounting it
            raced += 1
            continue
        if code == errno.EBUSY and time.monotonic() < deadline:
            time.sleep(0.01)
            continue
        if code == errno.EBUSY and _libc.umount2(path, _MNT_DETACH) == 0:
            unmounted = True
            continue
        raise OSError(code, f"umount: {os.strerror(code)}", str(target))
    return unmounted
