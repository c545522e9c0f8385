"""Reading tar streams fast, and without remembering every header.

tarfile parses each 512-byte header field by field (thirteen string and eight number conversions,
the checksum summed twice), reads through a 10 KiB buffer that it copies on every read, and keeps
every member it read in ``TarFile.members``, also when streaming: for a layer of a million entries
that is most of the time spent outside system calls, and a gigabyte of memory.

:class:`FastTarInfo` parses a plain header (octal numbers, unsigned checksum) with one ``struct``
call, the checksum summed in two ``adler32`` halves (each half's sum is below adler's modulus, so it
is exact) and the fields most headers repeat (mode, owner, times) remembered; every other header
(base-256 numbers, a signed checksum, old GNU sparse, the end of the archive, anything malformed)
goes to tarfile's own parser, which decides as always. :class:`TarStream` reads a stream's members
one at a time, as ``tarfile.open(mode="r|")`` does, and forgets them: a plain header is read
straight from its buffer, and any other (pax and GNU long-name headers, sparse files, whatever
tarfile would refuse or stop at) is handed to tarfile's member parser, reading the same buffer.
"""

from __future__ import annotations

import os
import struct
import tarfile
import zlib
from collections.abc import Iterator
from types import TracebackType
from typing import BinaryIO

_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s8x64s8s8s155s12x")
_NUL = b"\0"
_ENDS = (0, 0x20)  # NUL or space after the digits
_READ_SIZE = 1 << 20  # bytes read from the stream at a time
_MEMO_MAX = 4096  # fields remembered, each way (a few hundred KiB at most)
_numbers: dict[bytes, int | None] = {}
_owners: dict[bytes, tuple[str, str]] = {}  # uname and gname fields, decoded as UTF-8/surrogateescape
_PLAIN_TYPES = frozenset(
    (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
     tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE)
)  # fmt: skip
_DATA_TYPES = frozenset((tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE))  # followed by their data


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


def _number(field: bytes) -> int | None:
    value = _octal(field)
    if len(_numbers) < _MEMO_MAX:
        _numbers[field] = value
    return value


def _text(field: bytes, encoding: str, errors: str) -> str:
    return field.split(_NUL, 1)[0].decode(encoding, errors)


def byte_sum(buf: bytes) -> int:
    """The sum of a header's 512 bytes: adler32's low half is 1 + the sum modulo 65521, exact for 256
    bytes (at most 65280)."""
    return (zlib.adler32(buf[:256]) & 0xFFFF) + (zlib.adler32(buf[256:]) & 0xFFFF) - 2


class FastTarInfo(tarfile.TarInfo):
    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:
        if len(buf) != tarfile.BLOCKSIZE or buf[156:157] == tarfile.GNUTYPE_SPARSE:
            return super().frombuf(buf, encoding, errors)
        numbers = _numbers
        chksum_field = buf[148:156]
        stored = _octal(chksum_field)  # not remembered: it differs from header to header
        if stored is None or stored != 256 + byte_sum(buf) - sum(chksum_field):
            return super().frombuf(buf, encoding, errors)
        name, mode, uid, gid, size, mtime, _, kind, linkname, owners, major, minor, prefix = _HEADER.unpack(buf)
        fields = (mode, uid, gid, size, mtime, major, minor)
        values = [numbers[f] if f in numbers else _number(f) for f in fields]
        if None in values:
            return super().frombuf(buf, encoding, errors)
        obj = cls()
        obj.mode, obj.uid, obj.gid, obj.size, obj.mtime, obj.devmajor, obj.devminor = values  # type: ignore[assignment]
        obj.name = _text(name, encoding, errors)
        obj.chksum = stored
        obj.type = kind
        obj.linkname = _text(linkname, encoding, errors) if linkname[0] else ""
        if encoding == "utf-8" and errors == "surrogateescape":
            names = _owners.get(owners)
            if names is None:
                names = (_text(owners[:32], encoding, errors), _text(owners[32:], encoding, errors))
                if len(_owners) < _MEMO_MAX:
                    _owners[owners] = names
            obj.uname, obj.gname = names
        else:
            obj.uname, obj.gname = _text(owners[:32], encoding, errors), _text(owners[32:], encoding, errors)
        if kind == tarfile.AREGTYPE and obj.name.endswith("/"):
            obj.type = tarfile.DIRTYPE
        if obj.isdir():
            obj.name = obj.name.rstrip("/")
        if prefix[0]:
            prefix_text = _text(prefix, encoding, errors)
            if prefix_text and obj.type not in tarfile.GNU_TYPES:
                obj.name = prefix_text + "/" + obj.name
        return obj


class _Reader:
    """A forward-only view of a stream with its position, read in large pieces (what tarfile's member
    parser and file objects need of ``TarFile.fileobj``)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.buf = b""
        self.pos = 0  # of the next byte to hand out, in buf
        self.base = 0  # stream offset of buf[0]
        self.eof = False

    def tell(self) -> int:
        return self.base + self.pos

    def seekable(self) -> bool:
        return False

    def _refill(self, wanted: int) -> None:
        """Have ``wanted`` bytes past ``pos`` in buf, unless the stream ends first."""
        rest = self.buf[self.pos :]
        pieces = [rest] if rest else []  # a used-up buffer is not copied into the next
        have = len(rest)
        self.base += self.pos
        while have < wanted and not self.eof:
            piece = self.raw.read(max(_READ_SIZE, wanted - have))
            if not piece:
                self.eof = True
                break
            pieces.append(piece)
            have += len(piece)
        self.buf = pieces[0] if len(pieces) == 1 and type(pieces[0]) is bytes else b"".join(pieces)
        self.pos = 0

    def peek(self, size: int) -> bytes:
        if self.pos + size > len(self.buf):
            self._refill(size)
        return self.buf[self.pos : self.pos + size]

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = 1 << 62
        end = self.pos + size
        if end > len(self.buf):
            if size > _READ_SIZE:  # a large read: hand the stream's pieces through
                data = self.buf[self.pos :]
                self.base += len(self.buf)
                self.buf, self.pos = b"", 0
                pieces = [data]
                have = len(data)
                while have < size and not self.eof:
                    piece = self.raw.read(min(size - have, 1 << 24))
                    if not piece:
                        self.eof = True
                        break
                    pieces.append(piece)
                    have += len(piece)
                data = b"".join(pieces)
                self.base += len(data) - len(pieces[0])
                return data
            self._refill(size)
            end = min(size, len(self.buf))
        data = self.buf[self.pos : end]
        self.pos = end
        return data

    def view(self, size: int) -> memoryview:
        """Up to ``size`` next bytes as a view of the buffer, without copying them (a member's data
        needs no contiguous buffer: a new piece replaces a used-up one, nothing is joined); empty at
        the end of the stream."""
        if self.pos >= len(self.buf):
            if self.eof:
                return memoryview(b"")
            self.base += len(self.buf)
            piece = self.raw.read(_READ_SIZE)
            self.buf, self.pos = piece if type(piece) is bytes else bytes(piece), 0
            if not self.buf:
                self.eof = True
                return memoryview(b"")
        end = min(self.pos + size, len(self.buf))
        data = memoryview(self.buf)[self.pos : end]
        self.pos = end
        return data

    def seek(self, offset: int) -> None:
        """Move forward to ``offset`` (past the end of the stream: to its end)."""
        if offset < self.tell():
            raise tarfile.StreamError("seeking backwards is not allowed")
        while offset - self.base > len(self.buf) and not self.eof:
            self.base += len(self.buf)
            self.buf, self.pos = b"", 0
            self._refill(min(offset - self.base, _READ_SIZE))
        self.pos = min(offset - self.base, len(self.buf))


class TarStream:
    """The members of a tar stream, one at a time, as ``tarfile.open(fileobj, "r|")`` reads them
    (``next``, ``extractfile``), each forgotten once read."""

    def __init__(self, fileobj: BinaryIO, encoding: str = "utf-8", errors: str = "surrogateescape") -> None:
        self.fileobj = _Reader(fileobj)
        self.encoding = encoding
        self.errors = errors
        self.offset = 0  # of the next header
        self.pax_headers: dict[str, str] = {}  # global ones (tarfile's member parser keeps them here)
        self.members: list[tarfile.TarInfo] = []  # always empty; tarfile's TarFile has it
        self._done = False

    def __enter__(self) -> TarStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._done = True

    def next(self) -> tarfile.TarInfo | None:
        if self._done:
            return None
        reader = self.fileobj
        if self.offset != reader.tell():
            reader.seek(self.offset - 1)
            if not reader.read(1):
                raise tarfile.ReadError("unexpected end of data")
        buf = reader.peek(tarfile.BLOCKSIZE)
        if not self.pax_headers and buf[156:157] in _PLAIN_TYPES and len(buf) == tarfile.BLOCKSIZE:
            try:
                info = FastTarInfo.frombuf(buf, self.encoding, self.errors)
            except tarfile.HeaderError:
                info = None  # read again below, where tarfile's rules decide what it means
            if info is not None:
                reader.pos += tarfile.BLOCKSIZE
                info.offset = self.offset
                info.offset_data = self.offset + tarfile.BLOCKSIZE
                self.offset = info.offset_data
                if info.type in _DATA_TYPES:
                    self.offset += -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                return info
        return self._next_slow()

    def _next_slow(self) -> tarfile.TarInfo | None:
        """tarfile's own ``TarFile.next`` (stream mode), at this stream's position."""
        try:
            return FastTarInfo.fromtarfile(self)  # type: ignore[arg-type]
        except tarfile.EOFHeaderError:
            pass
        except tarfile.InvalidHeaderError as error:
            if self.offset == 0:
                raise tarfile.ReadError(str(error)) from None
        except tarfile.EmptyHeaderError:
            if self.offset == 0:
                raise tarfile.ReadError("empty file") from None
        except tarfile.TruncatedHeaderError as error:
            if self.offset == 0:
                raise tarfile.ReadError(str(error)) from None
        except tarfile.SubsequentHeaderError as error:
            raise tarfile.ReadError(str(error)) from None
        except zlib.error as error:
            raise tarfile.ReadError(f"zlib error: {error}") from None
        except (ValueError, OverflowError) as error:  # tarfile's pax and sparse-map parsers raise these
            raise tarfile.ReadError(f"damaged header at byte {self.offset}: {error}") from None
        self._done = True
        return None

    def extractfile(self, member: tarfile.TarInfo) -> tarfile.ExFileObject | None:
        if member.isreg() or member.type not in tarfile.SUPPORTED_TYPES:
            return tarfile.ExFileObject(self, member)  # type: ignore[arg-type]
        if member.islnk() or member.issym():
            raise tarfile.StreamError("cannot extract (sym)link as file object")
        return None


    def copy_data(
        self, member: tarfile.TarInfo, fd: int, chunk: int = _READ_SIZE, *, keep: int = -1
    ) -> list[memoryview] | None:
        """Write a regular member's data to file descriptor ``fd``: a plain member's bytes straight
        from the read buffer (no file objects: most members are small, and no copies), a sparse one
        through tarfile's file object, which fills its holes. A stream ending early is
        ``tarfile.ReadError``. Returns the bytes written, as views of the read buffer, when the
        member is plain and at most ``keep`` bytes long (else None)."""
        if member.sparse is not None:
            source = self.extractfile(member)
            assert source is not None
            while data := source.read(chunk):
                _write_all(fd, data)
            return None
        reader = self.fileobj
        reader.seek(member.offset_data)
        left = member.size
        kept: list[memoryview] | None = [] if left <= keep else None
        while left > 0:
            data = reader.view(min(left, chunk))
            if not data:
                raise tarfile.ReadError("unexpected end of data")
            _write_all(fd, data)
            if kept is not None:
                kept.append(data)
            left -= len(data)
        return kept


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def open_stream(fileobj: BinaryIO) -> TarStream:
    """A tar stream read with :class:`FastTarInfo`, names decoded as UTF-8 with ``surrogateescape``.
    A stream that is not a tar at all is refused at its first header (``tarfile.ReadError``)."""
    return TarStream(fileobj)


def members(tar: TarStream) -> Iterator[tarfile.TarInfo]:
    """The members of a streamed tar, in order."""
    while (member := tar.next()) is not None:
        yield member
