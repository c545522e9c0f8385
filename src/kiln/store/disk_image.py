"""A bootable GPT disk around an image's root file system, laid out as mkosi and EC2's Linux AMIs do:

=====  ===============  ==========  =============================================================
  #    type             size        holds
=====  ===============  ==========  =============================================================
  1    BIOS boot        1 MiB       GRUB's core.img (``legacy-bios``, ``uefi-preferred``)
  2    EFI system       64 MiB      FAT32, ``EFI/BOOT/BOOTX64.EFI`` (``uefi``, ``uefi-preferred``)
  3    Linux root x86   the rest    the image's ext4 (label ``kiln-root``), grown at first boot
=====  ===============  ==========  =============================================================

The disk is ``size`` bytes (the AMI's ``VolumeSize``, 8 GiB by default) and sparse: only the written
blocks take space. The ext4 is as large as the files need; cloud-init's growpart and resizefs grow
partition and file system to the volume at first boot. Every GUID, the FAT volume id and the file
system UUID derive from the image's identity, so the same image gives the same bytes.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kiln.errors import InvalidInput
from kiln.model.ec2_model import enum
from kiln.store.disk_esp import make_esp
from kiln.store.disk_gpt import BIOS_BOOT, ESP, ROOT_X86_64, SECTOR, Partition, last_usable, write_gpt
from kiln.store.disk_grub import bios_loader, efi_loader, grub_config

DEFAULT_BOOT_MODE = "uefi-preferred"
BOOT_MODE_FILE = "etc/kiln/boot-mode"  # written by the kiln-bootable-linux component
GIB = 1 << 30
MIB = 1 << 20
DEFAULT_SIZE = 8 * GIB
BIOS_START, BIOS_SIZE = 1 * MIB, 1 * MIB
ESP_START, ESP_SIZE = 2 * MIB, 64 * MIB
ROOT_START = ESP_START + ESP_SIZE
TAIL = 34 * SECTOR  # backup entries and header
CMDLINE = "ro console=tty0 console=ttyS0,115200n8"
CHUNK = 1 * MIB
_ZERO = bytes(CHUNK)


@dataclass(frozen=True)
class BootFiles:
    """What the loader starts: paths inside the root file system."""

    kernel: str
    initrd: str | None
    boot_mode: str


def _version_key(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def check_boot_mode(mode: str, where: str) -> str:
    modes = enum("BootModeValues")  # legacy-bios, uefi, uefi-preferred
    if mode not in modes:
        raise InvalidInput(f"unknown boot mode {mode!r}: one of {', '.join(modes)}", location=where)
    return mode


def find_boot_files(tree: Path, boot_mode: str | None = None) -> BootFiles | None:
    """The newest kernel under /boot with its initramfs, or None when the image has no kernel."""
    kernels = sorted((p for p in (tree / "boot").glob("vmlinuz-*") if p.is_file()), key=lambda p: _version_key(p.name))
    if not kernels:
        return None
    version = kernels[-1].name.removeprefix("vmlinuz-")
    initrd = tree / "boot" / f"initrd.img-{version}"
    mode_file = tree / BOOT_MODE_FILE
    if boot_mode is None:
        boot_mode = mode_file.read_text().strip() if mode_file.is_file() else DEFAULT_BOOT_MODE
        check_boot_mode(boot_mode, f"/{BOOT_MODE_FILE}")
    return BootFiles(f"/boot/{kernels[-1].name}", f"/boot/{initrd.name}" if initrd.is_file() else None, boot_mode)


def derived_guid(identity: str, purpose: str) -> uuid.UUID:
    return uuid.UUID(bytes=hashlib.sha256(f"{purpose}:{identity}".encode()).digest()[:16], version=4)


def minimum_size(rootfs_size: int) -> int:
    return ROOT_START + rootfs_size + TAIL


def check_size(size: int, rootfs_size: int) -> None:
    """InvalidInput unless a disk of ``size`` bytes holds the partitions and the root file system."""
    needed = minimum_size(rootfs_size)
    if size < needed:
        raise InvalidInput(
            f"disk size {size / GIB:g} GiB is smaller than the file system needs: {needed / GIB:.2f} GiB "
            f"(give {-(-needed // GIB)} GiB or more)",
            location="VolumeSize",
        )


def _copy_sparse(source: Path, handle: BinaryIO, offset: int) -> None:
    """Copy ``source`` into the disk at ``offset``, leaving its zero blocks holes."""
    with open(source, "rb") as src:
        position = offset
        while chunk := src.read(CHUNK):
            if chunk != _ZERO[: len(chunk)]:
                handle.seek(position)
                handle.write(chunk)
            position += len(chunk)


def write_boot_disk(rootfs: Path, dest: Path, *, boot: BootFiles, fs_uuid: str, identity: str, epoch: int,
                    size: int, scratch: Path) -> None:
    """The disk at ``dest``: GPT, loaders for ``boot.boot_mode`` and ``rootfs`` (an ext4 image) as root."""
    check_size(size, rootfs.stat().st_size)
    sectors = size // SECTOR
    partitions = [
        Partition(BIOS_BOOT, derived_guid(identity, "gpt-bios"), BIOS_START // SECTOR,
                  (BIOS_START + BIOS_SIZE) // SECTOR - 1, "bios"),
        Partition(ESP, derived_guid(identity, "gpt-esp"), ESP_START // SECTOR, (ESP_START + ESP_SIZE) // SECTOR - 1,
                  "esp"),
        Partition(ROOT_X86_64, derived_guid(identity, "gpt-root"), ROOT_START // SECTOR, last_usable(sectors),
                  "root"),
    ]  # fmt: skip
    config = grub_config(boot.kernel, boot.initrd, fs_uuid, CMDLINE)
    efi_files = {"EFI/BOOT/BOOTX64.EFI": efi_loader(config, scratch)} if boot.boot_mode != "legacy-bios" else {}
    esp = scratch / "esp.img"
    volume_id = derived_guid(identity, "esp-volume-id").hex[:8]
    make_esp(esp, ESP_SIZE, volume_id=volume_id, epoch=epoch, files=efi_files, scratch=scratch)
    with open(dest, "wb") as handle:
        handle.truncate(sectors * SECTOR)
        write_gpt(handle, derived_guid(identity, "gpt-disk"), partitions, sectors)
        if boot.boot_mode != "uefi":
            mbr_code, core = bios_loader(config, partitions[0].first, BIOS_SIZE, scratch)
            handle.seek(0)
            handle.write(mbr_code)
            handle.seek(partitions[0].offset)
            handle.write(core)
        _copy_sparse(esp, handle, partitions[1].offset)
        _copy_sparse(rootfs, handle, partitions[2].offset)
