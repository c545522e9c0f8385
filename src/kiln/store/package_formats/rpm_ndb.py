"""RPM's ndb database (``Packages.db``: SUSE, openSUSE Leap 15 and Tumbleweed before sqlite), read from
its bytes as rpm's ndb backend lays it out (little-endian throughout, in 16-byte blocks):

- a 32-byte header: magic ``RpmP``, version 0, generation, the number of 4 KiB slot pages, the next
  package index;
- slot pages, 16-byte slots (the first two places of page 0 are the header): magic ``Slot``, the package
  index, the blob's block offset (0: a free slot) and its block count;
- at each used slot's offset, a blob: ``BlbS``, the package index again, a timestamp and the header blob's
  length; the header blob; zero padding to the slot's blocks; then the Adler-32 of all before it, the
  length again and ``BlbE``.
"""

from __future__ import annotations

import struct
import zlib

from kiln.errors import InvalidInput

MAGIC, SLOT, BLOB_HEAD, BLOB_TAIL = b"RpmP", b"Slot", b"BlbS", b"BlbE"
HEADER_SIZE, SLOT_SIZE, BLOCK, PAGE = 32, 16, 16, 4096
HEAD_SIZE, TAIL_SIZE = 16, 12


def header_blobs(data: bytes, location: str) -> list[tuple[int, bytes]]:
    """(package index, header blob) of every used slot, by package index."""
    if len(data) < HEADER_SIZE or data[:4] != MAGIC:
        raise InvalidInput("not an RPM ndb database (no RpmP magic)", location=location)
    version, _, slot_pages = struct.unpack_from("<III", data, 4)
    if version != 0:
        raise InvalidInput(f"unsupported RPM ndb version {version} (0 is read)", location=location)
    if not slot_pages or slot_pages * PAGE > len(data):
        raise InvalidInput(f"RPM ndb database cut short ({slot_pages} slot pages, {len(data)} bytes)",
                           location=location)
    found = []
    for offset in range(HEADER_SIZE, slot_pages * PAGE, SLOT_SIZE):
        magic, index, block, count = struct.unpack_from("<4sIII", data, offset)
        if magic != SLOT:
            raise InvalidInput(f"RPM ndb slot at byte {offset} has no Slot magic", location=location)
        if block:
            found.append((index, _blob(data, index, block, count, location)))
    return sorted(found)


def _blob(data: bytes, index: int, block: int, count: int, location: str) -> bytes:
    where = f"{location}: package #{index}"
    start, end = block * BLOCK, (block + count) * BLOCK
    if not index or end > len(data) or count * BLOCK < HEAD_SIZE + TAIL_SIZE:
        raise InvalidInput(f"slot points outside the file (blocks {block}+{count})", location=where)
    magic, owner, _, length = struct.unpack_from("<4sIII", data, start)
    if magic != BLOB_HEAD or owner != index or count != -(-(HEAD_SIZE + length + TAIL_SIZE) // BLOCK):
        raise InvalidInput("blob head does not match its slot", location=where)
    checksum, tail_length, tail_magic = struct.unpack_from("<II4s", data, end - TAIL_SIZE)
    if tail_magic != BLOB_TAIL or tail_length != length:
        raise InvalidInput("blob tail does not match its head", location=where)
    if zlib.adler32(data[start:end - TAIL_SIZE]) != checksum:
        raise InvalidInput("blob checksum (Adler-32) does not match: the database is damaged", location=where)
    return data[start + HEAD_SIZE:start + HEAD_SIZE + length]
