"""CreateImage from a VM, without booting one: the guest's tree synced into an overlay over the
AMI's layers leaves in the upper dir exactly what changed (a whiteout for a deletion), and a qcow2
root volume's GPT root partition is found and mounted."""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import uuid
from pathlib import Path

import pytest

from kiln.runtime import overlay
from kiln.runtime.vm_capture import _root_partition, guest_root, sync_tree
from kiln.store.disk_gpt import ESP, ROOT_X86_64, Partition, last_usable, write_gpt

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="overlay and loop mounts need root")


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
        os.utime(root / name, ns=(1_000_000_000, 1_000_000_000))
    return root


def test_only_what_the_guest_changed_reaches_the_upper_dir(tmp_path: Path) -> None:
    lower = _tree(tmp_path / "lower", {"etc/hostname": "base\n", "etc/motd": "hello\n", "usr/bin/tool": "v1",
                                       "var/log/old.log": "x"})
    os.symlink("tool", lower / "usr/bin/link")
    guest = _tree(tmp_path / "guest", {"etc/hostname": "base\n", "etc/motd": "changed\n", "usr/bin/tool": "v1",
                                       "root/new-file": "new\n", "lost+found/x": "mkfs"})
    os.symlink("tool", guest / "usr/bin/link")
    (guest / "usr/bin/tool").chmod(0o755)  # mode change only
    (lower / "usr/bin/tool").chmod(0o755)
    os.utime(guest / "usr/bin/tool", ns=(1_000_000_000, 1_000_000_000))
    (guest / "var/log").mkdir(parents=True)
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    for directory in (upper, work, merged):
        directory.mkdir()
    overlay.mount([lower], upper, work, merged)
    try:
        sync_tree(guest, merged)
        assert (merged / "etc/motd").read_text() == "changed\n"
        assert not (merged / "var/log/old.log").exists() and not (merged / "lost+found").exists()
    finally:
        overlay.unmount(merged)
    files = sorted(str(p.relative_to(upper)) for p in upper.rglob("*") if not p.is_dir())
    assert files == ["etc/motd", "root/new-file", "var/log/old.log"], files
    whiteout = os.lstat(upper / "var/log/old.log")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0  # overlayfs's mark of a deletion
    assert not (upper / "usr/bin/tool").exists() and not (upper / "etc/hostname").exists()


def test_the_root_partition_of_a_gpt_volume_is_mounted(tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as handle:
        handle.truncate(64 << 20)
    partition = tmp_path / "root.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-d", str(_tree(tmp_path / "src", {"etc/os": "guest\n"})), str(partition),
                    "16M"], check=True)
    sectors = (64 << 20) // 512
    with open(raw, "r+b") as handle:  # an ESP first, the root second: as kiln's disk exports lay it out
        write_gpt(handle, uuid.uuid4(), [Partition(ESP, uuid.uuid4(), 2048, 6143, "esp"),
                                         Partition(ROOT_X86_64, uuid.uuid4(), 8192, last_usable(sectors), "root")],
                  sectors)
    with open(raw, "r+b") as handle:
        handle.seek(8192 * 512)
        handle.write(partition.read_bytes())
    assert _root_partition(raw)[0] == 8192 * 512
    volume = tmp_path / "root.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-O", "qcow2", str(raw), str(volume)], check=True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with guest_root(volume, scratch) as tree:
        assert (tree / "etc/os").read_text() == "guest\n"
    assert not any(p == scratch / "guest" for p in overlay.mount_points())


CAP_NET_BIND_SERVICE = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)  # VFS_CAP_REVISION_2, effective


def test_extended_attributes_and_hard_links_of_changed_files_are_kept(tmp_path: Path) -> None:
    lower = _tree(tmp_path / "lower", {"usr/bin/ping": "ping", "etc/a": "v1", "etc/same": "same"})
    os.link(lower / "etc/a", lower / "etc/b")
    os.setxattr(lower / "etc/same", "user.kept", b"1")
    guest = _tree(tmp_path / "guest", {"usr/bin/ping": "ping", "etc/a": "v2, longer", "etc/same": "same",
                                       "root/tagged": "x"})
    os.link(guest / "etc/a", guest / "etc/b")  # the pair, changed in the guest
    os.setxattr(guest / "etc/same", "user.kept", b"1")  # unchanged, xattr and all
    os.setxattr(guest / "usr/bin/ping", "security.capability", CAP_NET_BIND_SERVICE)  # setcap in the guest
    os.setxattr(guest / "root/tagged", "user.kiln.note", b"from the guest")
    os.setxattr(guest / "root", "user.dir", b"d")
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    for directory in (upper, work, merged):
        directory.mkdir()
    overlay.mount([lower], upper, work, merged)
    try:
        sync_tree(guest, merged)
        sync_tree(guest, merged)  # again: nothing left to change
        assert os.stat(merged / "etc/a").st_ino == os.stat(merged / "etc/b").st_ino
    finally:
        overlay.unmount(merged)
    assert os.getxattr(upper / "usr/bin/ping", "security.capability") == CAP_NET_BIND_SERVICE
    assert os.getxattr(upper / "root/tagged", "user.kiln.note") == b"from the guest"
    assert os.getxattr(upper / "root", "user.dir") == b"d"
    a, b = os.stat(upper / "etc/a"), os.stat(upper / "etc/b")
    assert (a.st_ino, a.st_nlink) == (b.st_ino, 2) and (upper / "etc/b").read_text() == "v2, longer"
    assert not (upper / "etc/same").exists()  # same content, same xattrs: never copied up
