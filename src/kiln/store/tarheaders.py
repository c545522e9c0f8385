"""Reading tar headers fast, and without remembering every one of them.

tarfile parses each 512-byte header field by field (thirteen string and eight number conversions,
the checksum summed twice) and keeps every member it read in ``TarFile.members``, also when streaming:
for a layer of a million entries that is most of the time spent outside system calls, and a gigabyte
of memory. :class:`FastTarInfo` parses a plain header (octal numbers, unsigned checksum) in one
``struct`` call and hands every other header (base-256 numbers, a signed checksum, old GNU sparse,
the end of the archive, anything malformed) to tarfile's own parser, which decides as always.
:func:`members` reads a stream's members one at a time and forgets them.
"""

from __future__ import annotations

import struct
import tarfile
from collections.abc import Iterator

_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s8x32s32s8s8s155s12x")
_NUMBERS = (1, 2, 3, 4, 5, 11, 12)  # mode, uid, gid, size, mtime, devmajor, devminor
_NUL = b"\0"
_ENDS = (0, 0x20)  # NUL or space after the digits


def _octal(field: bytes) -> int | None:
    """A plain octal number field; None for anything else (tarfile's parser then decides)."""
    body = field[:-1]
    if field[-1] in _ENDS and body.isdigit():  # what tar writes: "0000644\0"
        try:
            return int(body, 8)
        except ValueError:  # an 8 or a 9
            return None
    if field[:1] in (b"\x80", b"\xff"):
        return None
    digits = field.split(_NUL, 1)[0].strip()
    if not digits:
        return 0
    if not digits.isdigit():  # also refuses "+", "-", "_" and spaces that int() would accept
        return None
    try:
        return int(digits, 8)
    except ValueError:
        return None


class FastTarInfo(tarfile.TarInfo):
    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:
        if len(buf) != tarfile.BLOCKSIZE or buf[156:157] == tarfile.GNUTYPE_SPARSE:
            return super().frombuf(buf, encoding, errors)
        stored = _octal(buf[148:156])
        if stored is None or stored != 256 + sum(buf) - sum(buf[148:156]):
            return super().frombuf(buf, encoding, errors)
        fields = _HEADER.unpack(buf)
        numbers = [_octal(fields[i]) for i in _NUMBERS]
        if None in numbers:
            return super().frombuf(buf, encoding, errors)
        name, _, _, _, _, _, _, kind, linkname, uname, gname, _, _, prefix = fields
        obj = cls()
        obj.name = name.split(_NUL, 1)[0].decode(encoding, errors)
        obj.mode, obj.uid, obj.gid, obj.size, obj.mtime, obj.devmajor, obj.devminor = numbers  # type: ignore[assignment]
        obj.chksum = stored
        obj.type = kind
        obj.linkname = linkname.split(_NUL, 1)[0].decode(encoding, errors)
        obj.uname = uname.split(_NUL, 1)[0].decode(encoding, errors)
        obj.gname = gname.split(_NUL, 1)[0].decode(encoding, errors)
        if obj.type == tarfile.AREGTYPE and obj.name.endswith("/"):
            obj.type = tarfile.DIRTYPE
        if obj.isdir():
            obj.name = obj.name.rstrip("/")
        prefix_text = prefix.split(_NUL, 1)[0].decode(encoding, errors)
        if prefix_text and obj.type not in tarfile.GNU_TYPES:
            obj.name = prefix_text + "/" + obj.name
        return obj


def open_stream(fileobj: object) -> tarfile.TarFile:
    """A tar stream read with :class:`FastTarInfo`, names decoded as UTF-8 with ``surrogateescape``.

    tarfile's default buffer (10 KiB) is kept: its stream copies what is left of the buffer on each
    read, so a bigger one would cost more per header than it saves in reads."""
    return tarfile.open(  # type: ignore[call-overload, no-any-return]
        fileobj=fileobj, mode="r|", encoding="utf-8", errors="surrogateescape", tarinfo=FastTarInfo
    )


def members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of a streamed tar, each forgotten by ``tar`` once read."""
    while (member := tar.next()) is not None:
        tar.members.clear()
        yield member
