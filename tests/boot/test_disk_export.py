"""Disk exports of an image with a kernel: GPT, GRUB for BIOS and UEFI, root ext4 — byte-reproducible;
images without a kernel keep exporting as their bare file system; bad sizes and boot modes refused.

The kernel here is a stand-in file (nothing boots it; tests/boot/test_boot_qemu.py boots a real one):
what is checked is the disk kiln lays out around it."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.store import api
from kiln.store.disk_gpt import BIOS_BOOT, ESP, ROOT_X86_64, SECTOR

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="flattening layers keeps owners: root"),
    pytest.mark.skipif(shutil.which("grub-mkimage") is None, reason="scripts/setup.sh installs GRUB"),
]

KERNEL = "vmlinuz-6.1.0-99-cloud-amd64"


@pytest.fixture
def kernel_ami(busybox_copy: Callable[[str], Path]) -> str:
    root = busybox_copy("with-kernel")
    (root / "boot").mkdir(exist_ok=True)
    (root / "boot" / KERNEL).write_bytes(b"not really a kernel\n")
    (root / "boot" / "vmlinuz-6.1.0-9-cloud-amd64").write_bytes(b"an older one\n")
    (root / "boot" / "initrd.img-6.1.0-99-cloud-amd64").write_bytes(b"initramfs\n")
    return api.import_rootfs(root, name="with-kernel")


def _gpt(disk: Path) -> tuple[uuid.UUID, list[tuple[uuid.UUID, int, int]]]:
    with open(disk, "rb") as handle:
        handle.seek(SECTOR)
        header = handle.read(92)
        assert header[:8] == b"EFI PART"
        disk_guid = uuid.UUID(bytes_le=header[56:72])
        entries_lba, count, size = struct.unpack_from("<QII", header, 72)
        handle.seek(entries_lba * SECTOR)
        table = handle.read(count * size)
    parts = []
    for index in range(count):
        type_guid = uuid.UUID(bytes_le=table[index * size : index * size + 16])
        if type_guid.int:
            first, last = struct.unpack_from("<QQ", table, index * size + 32)
            parts.append((type_guid, first, last))
    return disk_guid, parts


def _read(disk: Path, offset: int, length: int) -> bytes:
    with open(disk, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)


def _esp_files(disk: Path, first_lba: int, tmp_path: Path) -> str:
    esp = tmp_path / "esp.img"
    subprocess.run(["dd", f"if={disk}", f"of={esp}", "bs=512", f"skip={first_lba}", "count=131072", "status=none"],
                   check=True)
    return subprocess.run(["mdir", "-/", "-b", "-i", str(esp), "::/"], capture_output=True, text=True,
                          env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout


def test_raw_export_is_a_bootable_gpt_disk(kernel_ami: str, tmp_path: Path) -> None:
    result = api.export_image_detailed(kernel_ami, "raw", tmp_path / "disk.raw", size=2 << 30)
    disk = result.path
    assert (result.bootable, result.boot_mode, result.virtual_size) == (True, "uefi-preferred", 2 << 30)
    assert disk.stat().st_size == 2 << 30
    assert disk.stat().st_blocks * 512 < 200 << 20, "the disk is sparse"
    _, parts = _gpt(disk)
    assert [p[0] for p in parts] == [BIOS_BOOT, ESP, ROOT_X86_64]
    mbr = _read(disk, 0, 512)
    assert mbr[510:] == b"\x55\xaa" and mbr[450] == 0xEE and any(mbr[:440]), "GRUB boot.img in the MBR"
    assert _read(disk, parts[0][1] * SECTOR, 4).strip(b"\0"), "GRUB core.img in the BIOS boot partition"
    assert "EFI/BOOT/BOOTX64.EFI" in _esp_files(disk, parts[1][1], tmp_path).replace("\\", "/").upper()
    root = parts[2][1] * SECTOR
    superblock = _read(disk, root + 1024, 1024)
    assert struct.unpack_from("<H", superblock, 56)[0] == 0xEF53 and superblock[120:129] == b"kiln-root"
    assert parts[2][2] == (2 << 30) // SECTOR - 34, "the root partition runs to the end of the volume"
    # the loader's configuration (a memdisk inside the EFI binary) boots the newest kernel and its initramfs
    loader = subprocess.run(["mcopy", "-i", str(tmp_path / "esp.img"), "::/EFI/BOOT/BOOTX64.EFI", "-"],
                            capture_output=True, check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout
    assert f"linux /boot/{KERNEL} root=UUID=".encode() in loader
    assert b"initrd /boot/initrd.img-6.1.0-99-cloud-amd64" in loader and b"console=ttyS0" in loader


def test_exports_are_byte_reproducible(kernel_ami: str, tmp_path: Path) -> None:
    for fmt in ("raw", "qcow2"):
        first = api.export_image(kernel_ami, fmt, tmp_path / f"one.{fmt}")
        second = api.export_image(kernel_ami, fmt, tmp_path / f"two.{fmt}")
        assert subprocess.run(["cmp", str(first), str(second)]).returncode == 0, f"{fmt} exports differ"
    disk_guid, _ = _gpt(tmp_path / "one.raw")
    copy = api.copy_image(kernel_ami, region="eu-west-1", name="same-content")
    again = api.export_image(copy, "raw", tmp_path / "copy.raw", region="eu-west-1")
    assert _gpt(again)[0] == disk_guid, "GUIDs derive from the image's content, not from chance"


def test_boot_modes_choose_the_loaders(kernel_ami: str, tmp_path: Path) -> None:
    uefi = api.export_image_detailed(kernel_ami, "raw", tmp_path / "uefi.raw", size=1 << 30, boot_mode="uefi")
    _, parts = _gpt(uefi.path)
    assert not any(_read(uefi.path, 0, 440)) and not _read(uefi.path, parts[0][1] * SECTOR, 512).strip(b"\0")
    assert "BOOTX64.EFI" in _esp_files(uefi.path, parts[1][1], tmp_path).upper()
    bios = api.export_image_detailed(kernel_ami, "raw", tmp_path / "bios.raw", size=1 << 30,
                                     boot_mode="legacy-bios")
    assert bios.boot_mode == "legacy-bios" and any(_read(bios.path, 0, 440))
    assert "BOOTX64" not in _esp_files(bios.path, _gpt(bios.path)[1][1][1], tmp_path).upper()


def test_without_a_kernel_the_disk_is_the_bare_file_system(kiln, busybox_dir: Path, tmp_path: Path) -> None:
    ami = api.import_rootfs(busybox_dir, name="no-kernel")
    result = kiln("image", "export", ami, "--format", "qcow2", "-o", str(tmp_path / "d.qcow2"), "--output", "json")
    assert result.exit_code == 0, result.stderr
    exported = json.loads(result.stdout)
    assert exported["Bootable"] is False and "has no kernel" in exported["Note"]
    assert "has no kernel" in result.stderr
    raw = tmp_path / "d.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(tmp_path / "d.qcow2"), str(raw)], check=True)
    assert struct.unpack_from("<H", _read(raw, 1024 + 56, 2))[0] == 0xEF53, "ext4 from byte 0: no partition table"


def test_rootfs_ext4_is_the_bare_file_system_even_with_a_kernel(kernel_ami: str, tmp_path: Path) -> None:
    result = api.export_image_detailed(kernel_ami, "rootfs-ext4", tmp_path / "root.ext4")
    assert result.bootable is False and result.note is None
    assert struct.unpack_from("<H", _read(result.path, 1024 + 56, 2))[0] == 0xEF53


def test_unknown_boot_mode_is_refused(kiln, kernel_ami: str, tmp_path: Path) -> None:
    dest = tmp_path / "d.raw"
    result = kiln("image", "export", kernel_ami, "--format", "raw", "-o", str(dest), "--boot-mode", "bios")
    assert result.exit_code in (1, 2) and "unknown boot mode 'bios'" in result.stderr
    assert "Traceback" not in result.stderr and not dest.exists()


def test_boot_mode_file_with_an_unknown_mode_names_the_file(busybox_copy: Callable[[str], Path],
                                                           tmp_path: Path) -> None:
    from kiln.errors import InvalidInput

    root = busybox_copy("bad-mode")
    (root / "boot").mkdir(exist_ok=True)
    (root / "boot" / KERNEL).write_bytes(b"k\n")
    (root / "etc" / "kiln").mkdir(parents=True)
    (root / "etc" / "kiln" / "boot-mode").write_text("efi\n")
    ami = api.import_rootfs(root, name="bad-mode")
    with pytest.raises(InvalidInput, match="unknown boot mode 'efi'") as error:
        api.export_image(ami, "raw", tmp_path / "d.raw")
    assert "/etc/kiln/boot-mode" in str(error.value.location)
    assert not (tmp_path / "d.raw").exists()


def test_disk_smaller_than_the_file_system_is_refused(kiln, busybox_copy: Callable[[str], Path],
                                                      tmp_path: Path) -> None:
    root = busybox_copy("big")
    (root / "boot").mkdir(exist_ok=True)
    (root / "boot" / KERNEL).write_bytes(b"k\n")
    with open(root / "big.bin", "wb") as handle:  # sparse: 1.5 GiB of files in a few blocks
        handle.truncate(3 << 29)
    ami = api.import_rootfs(root, name="big")
    dest = tmp_path / "d.qcow2"
    result = kiln("image", "export", ami, "--format", "qcow2", "-o", str(dest), "--volume-size", "1")
    assert result.exit_code in (1, 2)
    assert "smaller than the file system needs" in result.stderr and "VolumeSize" in result.stderr
    assert "Traceback" not in result.stderr and not dest.exists()
    bad = kiln("image", "export", ami, "--format", "qcow2", "-o", str(dest), "--volume-size", "0")
    assert bad.exit_code in (1, 2) and "VolumeSize" in bad.stderr and not dest.exists()


def test_the_ami_records_boot_attributes_as_ec2_does(kernel_ami: str, busybox_copy: Callable[[str], Path],
                                                     tmp_path: Path) -> None:
    shape = api.get_image(kernel_ami).to_ec2()
    assert (shape["BootMode"], shape["EnaSupport"]) == ("uefi-preferred", True)
    assert "ImdsSupport" not in shape and "TpmSupport" not in shape, "no cloud-init, no TPM: not claimed"
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "motd").write_text("child\n")
    child = api.create_image_from_upper(kernel_ami, upper, name="child")
    assert api.get_image(child).to_ec2()["BootMode"] == "uefi-preferred", "a child keeps its parent's"
    copied = api.copy_image(kernel_ami, region="eu-west-1", name="copied")
    assert api.get_image(copied, "eu-west-1").to_ec2()["BootMode"] == "uefi-preferred", "CopyImage keeps it"

    root = busybox_copy("bios-only")
    (root / "boot").mkdir(exist_ok=True)
    (root / "boot" / KERNEL).write_bytes(b"k\n")
    (root / "etc" / "kiln").mkdir(parents=True)
    (root / "etc" / "kiln" / "boot-mode").write_text("legacy-bios\n")
    (root / "usr" / "bin").mkdir(parents=True, exist_ok=True)
    (root / "usr" / "bin" / "cloud-init").write_text("#!/bin/sh\n")
    bios = api.get_image(api.import_rootfs(root, name="bios-only")).to_ec2()
    assert (bios["BootMode"], bios["ImdsSupport"]) == ("legacy-bios", "v2.0")


def test_an_image_without_a_kernel_has_no_boot_mode(busybox_dir: Path) -> None:
    assert "BootMode" not in api.get_image(api.import_rootfs(busybox_dir, name="plain")).to_ec2()
