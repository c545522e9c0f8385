"""GRUB for a kiln disk, made on the host (the image needs no bootloader package): one ``grub.cfg``
carried in a memdisk inside each loader, as ``grub-mkstandalone`` does, so the loaders read nothing
from the ESP. BIOS: ``boot.img`` in the MBR and ``core.img`` in the BIOS boot partition, the two
pointers ``grub-bios-setup`` would fill written here (the disk is a file, not a device). UEFI:
``EFI/BOOT/BOOTX64.EFI`` on the ESP, the removable-media path every firmware tries."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

from kiln.errors import SystemRequirement

GRUB_LIB = Path("/usr/lib/grub")
COMMON_MODULES = ("part_gpt", "part_msdos", "ext2", "fat", "memdisk", "tar", "normal", "configfile", "linux",
                  "search", "search_fs_uuid", "search_label", "serial", "terminal", "echo", "test", "boot", "gzio")
BIOS_MODULES = ("biosdisk",)
EFI_MODULES = ("efi_gop", "efi_uga", "all_video")
KERNEL_SECTOR = 0x5C  # boot.img: the sector core.img starts at (u64)
DRIVE_CHECK = 0x66  # boot.img: a jump that tests for floppies, replaced by two NOPs on a hard disk
BLOCKLIST = 0x200 - 12  # core.img's first sector: where the rest of core.img is (start u64, len u16, segment u16)
CORE_SEGMENT = 0x820


def grub_config(kernel: str, initrd: str | None, fs_uuid: str, cmdline: str) -> str:
    lines = [
        "serial --unit=0 --speed=115200",
        "terminal_input serial console",
        "terminal_output serial console",
        f"search --no-floppy --fs-uuid --set=root {fs_uuid}",
        f"echo 'kiln: booting {kernel}'",
        f"linux {kernel} root=UUID={fs_uuid} {cmdline}",
    ]
    if initrd:
        lines.append(f"initrd {initrd}")
    lines.append("boot")
    return "\n".join(lines) + "\n"


def _memdisk(config: str, dest: Path) -> None:
    data = config.encode()
    with tarfile.open(dest, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name in ("boot", "boot/grub"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        info = tarfile.TarInfo("boot/grub/grub.cfg")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))


def _mkimage(platform: str, modules: tuple[str, ...], config: str, dest: Path, scratch: Path) -> bytes:
    tool = shutil.which("grub-mkimage")
    if tool is None or not (GRUB_LIB / platform).is_dir():
        package = "grub-pc-bin" if platform == "i386-pc" else "grub-efi-amd64-bin"
        raise SystemRequirement(f"GRUB for {platform} is not installed", hint=f"apt-get install {package}")
    memdisk = scratch / f"memdisk-{platform}.tar"
    _memdisk(config, memdisk)
    subprocess.run(
        [tool, "-O", platform, "-d", str(GRUB_LIB / platform), "-m", str(memdisk), "-p", "(memdisk)/boot/grub",
         "-o", str(dest), *COMMON_MODULES, *modules],
        check=True, capture_output=True,
    )  # fmt: skip
    return dest.read_bytes()


def efi_loader(config: str, scratch: Path) -> bytes:
    return _mkimage("x86_64-efi", EFI_MODULES, config, scratch / "BOOTX64.EFI", scratch)


def bios_loader(config: str, core_sector: int, room: int, scratch: Path) -> tuple[bytes, bytes]:
    """(the MBR's first 440 bytes, core.img) for core.img written at ``core_sector``, in ``room`` bytes."""
    core = bytearray(_mkimage("i386-pc", BIOS_MODULES, config, scratch / "core.img", scratch))
    if len(core) > room:
        raise SystemRequirement(f"GRUB core.img is {len(core)} bytes, more than the BIOS boot partition's {room}")
    sectors = -(-len(core) // 512)
    core = core.ljust(sectors * 512, b"\0")
    struct.pack_into("<QHH", core, BLOCKLIST, core_sector + 1, sectors - 1, CORE_SEGMENT)
    boot = bytearray((GRUB_LIB / "i386-pc" / "boot.img").read_bytes())
    struct.pack_into("<Q", boot, KERNEL_SECTOR, core_sector)
    boot[DRIVE_CHECK : DRIVE_CHECK + 2] = b"\x90\x90"
    return bytes(boot[:440]), bytes(core)
