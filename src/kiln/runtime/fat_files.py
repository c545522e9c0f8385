"""Files put into the root directory of an empty FAT12 volume (as ``mkfs.vfat`` makes a small one),
in memory and without a tool: what a NoCloud seed needs, a few small files with long names.

The volume's boot sector says where the FATs, the root directory and the data area are; each file
gets consecutive clusters (chained in every FAT copy), a long-name (VFAT) entry set and an 8.3 entry
``KILNnnnn`` whose checksum ties the two together.
"""

from __future__ import annotations

import struct
import time

from kiln.errors import InvalidInput

FAT12_MAX_CLUSTERS = 4084
END_OF_CHAIN = 0xFFF
LONG_NAME_CHARS = 13
ATTR_LONG_NAME, ATTR_ARCHIVE = 0x0F, 0x20


def _set_fat12(fat: bytearray, cluster: int, value: int) -> None:
    offset = cluster + cluster // 2
    if cluster % 2 == 0:
        fat[offset] = value & 0xFF
        fat[offset + 1] = (fat[offset + 1] & 0xF0) | ((value >> 8) & 0x0F)
    else:
        fat[offset] = (fat[offset] & 0x0F) | ((value & 0x0F) << 4)
        fat[offset + 1] = (value >> 4) & 0xFF


def _checksum(short: bytes) -> int:
    total = 0
    for byte in short:
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    return total


def _long_name_entries(name: str, checksum: int) -> list[bytes]:
    """The VFAT entries of ``name``, in the order they go on disk (the last part first)."""
    chars = name.encode("utf-16-le")
    count = -(-len(name) // LONG_NAME_CHARS)
    if len(name) % LONG_NAME_CHARS:
        chars += b"\0\0"  # the terminator, then 0xFFFF padding
    chars = chars.ljust(count * LONG_NAME_CHARS * 2, b"\xff")
    entries = []
    for index in range(count):
        part = chars[index * 26:(index + 1) * 26]
        sequence = (index + 1) | (0x40 if index == count - 1 else 0)
        entries.append(struct.pack("<B10sBBB12sH4s", sequence, part[:10], ATTR_LONG_NAME, 0, checksum, part[10:22],
                                   0, part[22:26]))
    return entries[::-1]


def _stamp(now: time.struct_time) -> tuple[int, int]:
    date = ((now.tm_year - 1980) << 9) | (now.tm_mon << 5) | now.tm_mday
    return (now.tm_hour << 11) | (now.tm_min << 5) | (now.tm_sec // 2), date


def add_files(volume: bytearray, files: dict[str, bytes]) -> None:
    """Write ``files`` (name → content) into the root directory of the empty FAT12 ``volume``."""
    sector, per_cluster, reserved, fats, root_entries, small_total = struct.unpack_from("<HBHBHH", volume, 11)
    fat_sectors = struct.unpack_from("<H", volume, 22)[0]
    total = small_total or struct.unpack_from("<I", volume, 32)[0]
    fat_start, root = reserved * sector, (reserved + fats * fat_sectors) * sector
    data = root + root_entries * 32
    cluster_bytes = per_cluster * sector
    clusters = (total * sector - data) // cluster_bytes
    if clusters > FAT12_MAX_CLUSTERS:
        raise ValueError("not a FAT12 volume")
    slot = next((i for i in range(root_entries) if volume[root + i * 32] == 0), root_entries)
    fat_copies = [bytearray(volume[fat_start + n * fat_sectors * sector:fat_start + (n + 1) * fat_sectors * sector])
                  for n in range(fats)]
    clock, day = _stamp(time.gmtime())
    free = 2
    for number, (name, content) in enumerate(files.items()):
        count = -(-len(content) // cluster_bytes)
        if free + count - 2 > clusters:
            raise InvalidInput(f"the NoCloud seed has no room for {name} ({len(content)} bytes)", location=name)
        first = free if count else 0
        for index in range(count):
            cluster = free + index
            offset = data + (cluster - 2) * cluster_bytes
            volume[offset:offset + cluster_bytes] = content[index * cluster_bytes:(index + 1) * cluster_bytes].ljust(
                cluster_bytes, b"\0")
            for fat in fat_copies:
                _set_fat12(fat, cluster, END_OF_CHAIN if index == count - 1 else cluster + 1)
        free += count
        short = f"KILN{number:04d}   ".encode()
        entries = [*_long_name_entries(name, _checksum(short)),
                   struct.pack("<11sBBBHHHHHHHI", short, ATTR_ARCHIVE, 0, 0, clock, day, day, 0, clock, day, first,
                               len(content))]
        if slot + len(entries) > root_entries:
            raise InvalidInput("the NoCloud seed's root directory is full", location=name)
        for entry in entries:
            volume[root + slot * 32:root + (slot + 1) * 32] = entry
            slot += 1
    for n, fat in enumerate(fat_copies):
        volume[fat_start + n * fat_sectors * sector:fat_start + (n + 1) * fat_sectors * sector] = fat
