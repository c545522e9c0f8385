"""A GUID partition table written byte by byte (UEFI spec, chapter 5): protective MBR, primary header and
entries at the start, their backups at the end. Every GUID is given by the caller, so the same layout
is the same bytes."""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import BinaryIO

SECTOR = 512
ENTRIES = 128
ENTRY_SIZE = 128
ENTRY_SECTORS = ENTRIES * ENTRY_SIZE // SECTOR  # 32

# partition type GUIDs (the discoverable partitions specification names the root one)
BIOS_BOOT = uuid.UUID("21686148-6449-6e6f-744e-656564454649")
ESP = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
ROOT_X86_64 = uuid.UUID("4f68bce3-e8cd-4db1-96e7-fbcaf984b709")
LEGACY_BIOS_BOOTABLE = 1 << 2  # attribute bit 2


@dataclass(frozen=True)
class Partition:
    type_guid: uuid.UUID
    guid: uuid.UUID
    first: int  # LBA
    last: int  # LBA, inclusive
    name: str
    attributes: int = 0

    @property
    def offset(self) -> int:
        return self.first * SECTOR

    @property
    def size(self) -> int:
        return (self.last - self.first + 1) * SECTOR


def last_usable(disk_sectors: int) -> int:
    return disk_sectors - 1 - ENTRY_SECTORS - 1


def _entries(partitions: list[Partition]) -> bytes:
    table = bytearray(ENTRIES * ENTRY_SIZE)
    for index, part in enumerate(partitions):
        name = part.name.encode("utf-16-le")[:72].ljust(72, b"\0")
        struct.pack_into("<16s16sQQQ72s", table, index * ENTRY_SIZE, part.type_guid.bytes_le, part.guid.bytes_le,
                         part.first, part.last, part.attributes, name)
    return bytes(table)


def _header(disk_guid: uuid.UUID, entries: bytes, disk_sectors: int, *, backup: bool) -> bytes:
    current, other = (disk_sectors - 1, 1) if backup else (1, disk_sectors - 1)
    table_lba = disk_sectors - 1 - ENTRY_SECTORS if backup else 2
    fields = [b"EFI PART", 0x00010000, 92, 0, 0, current, other, 2 + ENTRY_SECTORS, last_usable(disk_sectors),
              disk_guid.bytes_le, table_lba, ENTRIES, ENTRY_SIZE, zlib.crc32(entries)]
    layout = "<8sIIIIQQQQ16sQIII"
    header = struct.pack(layout, *fields)
    fields[3] = zlib.crc32(header)
    return struct.pack(layout, *fields).ljust(SECTOR, b"\0")


def protective_mbr(disk_sectors: int) -> bytes:
    mbr = bytearray(SECTOR)
    struct.pack_into("<B3sB3sII", mbr, 446, 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1,
                     min(disk_sectors - 1, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def write_gpt(handle: BinaryIO, disk_guid: uuid.UUID, partitions: list[Partition], disk_sectors: int) -> None:
    """Write the protective MBR, both headers and both entry arrays into an open disk file."""
    entries = _entries(partitions)
    handle.seek(0)
    handle.write(protective_mbr(disk_sectors))
    handle.write(_header(disk_guid, entries, disk_sectors, backup=False))
    handle.write(entries)
    handle.seek((disk_sectors - 1 - ENTRY_SECTORS) * SECTOR)
    handle.write(entries)
    handle.write(_header(disk_guid, entries, disk_sectors, backup=True))
