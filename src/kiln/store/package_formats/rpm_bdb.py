"""RPM's BerkeleyDB database (``var/lib/rpm/Packages``: RHEL/CentOS 7-8, Amazon Linux 2, older SUSE and
Fedora), read from its bytes: nothing of BerkeleyDB is linked, nothing in the image runs.

The file is a BerkeleyDB *hash* database (Berkeley DB's documented on-disk format): page 0 is the hash
metadata page (magic 0x061561 at byte 12, in the byte order the database was written in, which the magic
tells; version at 16; page size at 20; last page number at 32). Every other page starts with a 26-byte
header (page number at 8, next page at 16, entry count at 20, free-space offset at 22, type at 25) and,
on hash pages (type 13, or 2 for the older unsorted kind), an array of 2-byte item offsets after it.
Items pair up as key, value; an item's first byte is its kind: 1 the bytes inline (the item runs to the
previous item's offset, the first to the end of the page), 3 an off-page item (page number at +4, total
length at +8) whose bytes are the data of a chain of overflow pages (type 7: the byte count at 22, the
bytes from 26, the next page at 16). Keys are the 4-byte header numbers; each value is one header blob
(``kiln.store.package_formats.rpm``). Hash pages are read in file order: live items are only on them.
"""

from __future__ import annotations

import struct

from kiln.errors import InvalidInput

HASH_MAGIC = 0x061561
BTREE_MAGIC = 0x053162
PAGE_HEADER = 26
HASH_PAGES = (2, 13)  # P_HASH_UNSORTED, P_HASH
OVERFLOW_PAGE = 7
KEYDATA, OFFPAGE = 1, 3


class _File:
    def __init__(self, data: bytes, location: str) -> None:
        self.data, self.location = data, location
        if len(data) < 512:
            raise InvalidInput("too short for a BerkeleyDB database", location=location)
        little, big = struct.unpack_from("<I", data, 12)[0], struct.unpack_from(">I", data, 12)[0]
        if HASH_MAGIC in (little, big):
            self.order = "<" if little == HASH_MAGIC else ">"
        elif BTREE_MAGIC in (little, big):
            raise InvalidInput("a BerkeleyDB btree database, not the hash database rpm keeps its Packages in",
                               location=location)
        else:
            raise InvalidInput("not a BerkeleyDB hash database (no hash magic at byte 12)", location=location)
        version, self.page_size = self.u32(16), self.u32(20)
        if not 8 <= version <= 10:
            raise InvalidInput(f"unsupported BerkeleyDB hash version {version} (8 to 10 are read)", location=location)
        if self.page_size < 512 or self.page_size > 65536 or self.page_size & (self.page_size - 1):
            raise InvalidInput(f"BerkeleyDB page size {self.page_size} is not a power of two from 512 to 65536",
                               location=location)
        self.last_page = min(self.u32(32), len(data) // self.page_size - 1)

    def u16(self, offset: int) -> int:
        return int(struct.unpack_from(self.order + "H", self.data, offset)[0])

    def u32(self, offset: int) -> int:
        return int(struct.unpack_from(self.order + "I", self.data, offset)[0])

    def page(self, number: int) -> int:
        """The byte offset of page ``number``, checked to be that page."""
        start = number * self.page_size
        if not 0 < number <= self.last_page or self.u32(start + 8) != number:
            raise InvalidInput(f"BerkeleyDB page {number} is missing or not itself", location=self.location)
        return start

    def overflow(self, number: int, length: int) -> bytes:
        chunks: list[bytes] = []
        remaining, seen = length, set()
        while remaining > 0:
            if number in seen:
                raise InvalidInput(f"BerkeleyDB overflow chain loops at page {number}", location=self.location)
            seen.add(number)
            start = self.page(number)
            if self.data[start + 25] != OVERFLOW_PAGE:
                raise InvalidInput(f"BerkeleyDB page {number} is not an overflow page", location=self.location)
            size = self.u16(start + 22)
            if size > remaining or PAGE_HEADER + size > self.page_size:
                raise InvalidInput(f"BerkeleyDB overflow page {number} holds {size} bytes, more than it may",
                                   location=self.location)
            chunks.append(self.data[start + PAGE_HEADER:start + PAGE_HEADER + size])
            remaining -= size
            number = self.u32(start + 16)
        return b"".join(chunks)

    def item(self, start: int, offset: int, length: int, where: str) -> bytes:
        if length < 1 or offset < PAGE_HEADER or offset + length > self.page_size:
            raise InvalidInput(f"{where}: item outside its page", location=self.location)
        kind = self.data[start + offset]
        if kind == KEYDATA:
            return self.data[start + offset + 1:start + offset + length]
        if kind == OFFPAGE and length >= 12:
            return self.overflow(self.u32(start + offset + 4), self.u32(start + offset + 8))
        raise InvalidInput(f"{where}: item of kind {kind} (rpm's Packages holds plain and off-page items only)",
                           location=self.location)


def hash_items(data: bytes, location: str) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of a BerkeleyDB hash database's bytes, in page order."""
    db = _File(data, location)
    items = []
    for number in range(1, db.last_page + 1):
        start = number * db.page_size
        if db.data[start + 25] not in HASH_PAGES or db.u32(start + 8) != number:
            continue  # metadata, overflow, free or never-written (all-zero) pages
        entries = db.u16(start + 20)
        if PAGE_HEADER + 2 * entries > db.page_size:
            raise InvalidInput(f"BerkeleyDB page {number} claims {entries} items", location=location)
        offsets = [db.u16(start + PAGE_HEADER + 2 * index) for index in range(entries)]
        for index in range(0, entries - 1, 2):
            where = f"page {number} item {index}"
            key_end = db.page_size if index == 0 else offsets[index - 1]
            key = db.item(start, offsets[index], key_end - offsets[index], where)
            value = db.item(start, offsets[index + 1], offsets[index] - offsets[index + 1], where)
            items.append((key, value))
    return items


def header_blobs(data: bytes, location: str) -> list[tuple[int, bytes]]:
    """(header number, header blob) of rpm's ``Packages`` hash database, by header number; the record
    numbered 0 (older rpm's counter of header numbers) is not a header and is left out."""
    items = hash_items(data, location)
    db_order = "<" if struct.unpack_from("<I", data, 12)[0] == HASH_MAGIC else ">"
    found = []
    for key, value in items:
        if len(key) != 4:
            raise InvalidInput(f"a Packages key of {len(key)} bytes (header numbers are 4)", location=location)
        number = int(struct.unpack(db_order + "I", key)[0])
        if number:
            found.append((number, value))
    return sorted(found)
