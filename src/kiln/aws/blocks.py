"""A disk as EBS sees it: 512 KiB blocks by index, their SHA-256, and the linear checksum.

Reading skips the file's holes (``SEEK_DATA``): a sparse raw export of a 1 GiB disk holding 60 MiB of
files reads about 60 MiB. All-zero blocks are never yielded (EBS reads unwritten blocks as zeros).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

BLOCK_SIZE = 512 * 1024
ZERO_BLOCK = bytes(BLOCK_SIZE)
ZERO_DIGEST = hashlib.sha256(ZERO_BLOCK).digest()
GIB = 1 << 30


def block_count(size: int) -> int:
    return -(-size // BLOCK_SIZE)


def volume_size_gib(size: int) -> int:
    return max(1, -(-size // GIB))


def _data_ranges(handle: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the file's data, block-aligned; the whole file if holes cannot be asked for."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(handle, offset, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after offset
            return
        end = os.lseek(handle, start, os.SEEK_HOLE)
        first = start - start % BLOCK_SIZE
        yield first, min(size, end)
        offset = max(end, first + BLOCK_SIZE)


def disk_blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """(index, data) of every block that is not all zeros, in index order; the last block padded."""
    with open(path, "rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        ranges = _data_ranges(handle.fileno(), size) if hasattr(os, "SEEK_DATA") else iter([(0, size)])
        last = -1
        for start, end in ranges:
            index = max(start // BLOCK_SIZE, last + 1)
            while index * BLOCK_SIZE < end:
                data = os.pread(handle.fileno(), BLOCK_SIZE, index * BLOCK_SIZE)
                if len(data) < BLOCK_SIZE:
                    data += bytes(BLOCK_SIZE - len(data))
                if data != ZERO_BLOCK:
                    yield index, data
                last = index
                index += 1


def digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def linear_checksum(digests: Iterable[bytes]) -> str:
    """CompleteSnapshot's LINEAR checksum: SHA-256 over the written blocks' SHA-256 digests (raw bytes),
    concatenated in ascending block index order; base64."""
    whole = hashlib.sha256()
    for item in digests:
        whole.update(item)
    return b64(whole.digest())
