"""The same image gives the same bytes in every export, whatever the clock, the output's name or the
store's files say; the disks stay valid (fsck, qemu-img) and hold the image's files."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from kiln.home import region_dir
from kiln.store import api


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["tar", "oci-archive", "raw", "qcow2", "vmdk", "vhd"])
def test_every_format_is_reproducible(tmp_path: Path, base_ami: str, fmt: str) -> None:
    first = api.export_image(base_ami, fmt, tmp_path / f"first.{fmt}")
    time.sleep(1.1)  # a second later: any time taken from the clock would show
    for blob in (region_dir() / "blobs" / "sha256").iterdir():  # and the store's files look touched
        os.utime(blob)
    second = api.export_image(base_ami, fmt, tmp_path / f"other-name.{fmt}")
    assert digest(first) == digest(second)


def test_the_raw_disk_is_a_clean_filesystem_of_whole_mebibytes(tmp_path: Path, base_ami: str) -> None:
    raw = api.export_image(base_ami, "raw", tmp_path / "disk.raw")
    assert raw.stat().st_size % (1 << 20) == 0
    subprocess.run(["e2fsck", "-fn", str(raw)], check=True, capture_output=True)
    stats = subprocess.run(["debugfs", "-R", "stats", str(raw)], check=True, capture_output=True, text=True).stdout
    assert "Filesystem volume name:   kiln-root" in stats
    other = api.copy_image(base_ami, region="eu-west-1", name="copied")
    copied = api.export_image(other, "raw", tmp_path / "copy.raw", region="eu-west-1")
    assert digest(copied) == digest(raw)  # a copy is the same content, so the same disk


@pytest.mark.parametrize(("fmt", "qemu_name"), [("qcow2", "qcow2"), ("vmdk", "vmdk"), ("vhd", "vpc")])
def test_converted_disks_hold_the_raw_disk(tmp_path: Path, base_ami: str, fmt: str, qemu_name: str) -> None:
    raw = api.export_image(base_ami, "raw", tmp_path / "disk.raw")
    disk = api.export_image(base_ami, fmt, tmp_path / f"disk.{fmt}")
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-f", qemu_name, "-O", "raw", str(disk), str(back)], check=True)
    with open(back, "rb") as converted:
        assert hashlib.sha256(converted.read(raw.stat().st_size)).hexdigest() == digest(raw)


@pytest.mark.parametrize("random_cid", [b"fc7027", b"2299e589", b"7"])
def test_the_vmdk_cid_is_derived_whatever_qemu_drew(tmp_path: Path, random_cid: bytes) -> None:
    from kiln.store.export_disk import fix_vmdk

    disks = []
    for name, cid in (("a", random_cid), ("b", b"1234abcd")):
        (tmp_path / name).mkdir()
        disk = tmp_path / name / "disk.vmdk"  # the same name: a VMDK records its file name
        subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(disk), "1M"], check=True)
        data = disk.read_bytes()
        start = data.index(b"\nCID=") + len(b"\nCID=")
        end = data.index(b"\n", start)
        text_end = data.index(b"\0", start)
        patched = data[:start] + cid + data[end:text_end]
        body = patched.ljust(text_end, b"\0")  # the descriptor text, NUL-padded as qemu leaves it
        disk.write_bytes(body + data[len(body):])
        fix_vmdk(disk, "identity")
        subprocess.run(["qemu-img", "check", str(disk)], check=True, capture_output=True)
        disks.append(disk.read_bytes())
    assert disks[0] == disks[1]


def test_a_tree_dated_at_the_epoch_gives_the_same_disk(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("epoch\n")
    for path in (tree / "etc" / "hostname", tree / "etc"):
        os.utime(path, (0, 0))  # e2fsprogs takes a fake time of 0 for none and would stamp the clock's
    ami = api.import_rootfs(tree, name="at-the-epoch")
    first = api.export_image(ami, "raw", tmp_path / "first.raw")
    time.sleep(1.1)
    second = api.export_image(ami, "raw", tmp_path / "second.raw")
    assert digest(first) == digest(second)
