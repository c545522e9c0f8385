"""kiln's fast tar header parser reads every header as tarfile's own parser does (or leaves it to it)."""

from __future__ import annotations

import io
import random
import subprocess
import tarfile
from pathlib import Path

import pytest

from kiln.store.tarheaders import FastTarInfo, TarStream, members, open_stream

ATTRS = ("name", "mode", "uid", "gid", "size", "mtime", "chksum", "type", "linkname", "uname", "gname",
         "devmajor", "devminor")  # fmt: skip


def _parsed(cls: type[tarfile.TarInfo], header: bytes) -> object:
    try:
        info = cls.frombuf(header, "utf-8", "surrogateescape")
    except tarfile.HeaderError as error:
        return type(error).__name__
    return (*(getattr(info, attr) for attr in ATTRS), getattr(info, "_sparse_structs", None))


def _headers(tmp_path: Path) -> list[bytes]:
    """Headers GNU tar writes in each of its formats, of a tree with every kind of entry."""
    tree = tmp_path / "tree"
    (tree / "dir" / ("long" * 40)).mkdir(parents=True)
    (tree / "dir" / "file").write_bytes(b"x" * 1000)
    (tree / "dir" / "link").symlink_to("file")
    (tree / "dir" / "hard").hardlink_to(tree / "dir" / "file")
    with open(tree / "sparse", "wb") as handle:
        handle.truncate(1 << 20)
    headers = []
    for fmt in ("gnu", "oldgnu", "posix", "ustar", "v7"):
        gnu = fmt in ("gnu", "oldgnu", "posix")  # ustar and v7 hold neither the long name nor sparse files
        names = ["."] if gnu else ["dir/file", "dir/link", "dir/hard", "sparse"]
        data = subprocess.run(["tar", f"--format={fmt}", *(["--sparse"] if gnu else []), "-C", str(tree), "-cf",
                               "-", *names], capture_output=True, check=True).stdout  # fmt: skip
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            headers += [data[m.offset : m.offset + tarfile.BLOCKSIZE] for m in tar.getmembers()]
    return headers


def test_headers_parse_as_tarfile_parses_them(tmp_path: Path) -> None:
    rng = random.Random(21)
    headers = _headers(tmp_path)
    assert len(headers) > 20
    for header in headers:
        assert _parsed(FastTarInfo, header) == _parsed(tarfile.TarInfo, header)
        for _ in range(100):  # damaged copies: the same answer, or the same refusal
            damaged = bytearray(header)
            for _ in range(rng.randint(1, 3)):
                damaged[rng.randrange(tarfile.BLOCKSIZE)] = rng.choice(
                    [0, 0x20, 0x2B, 0x5F, 0x80, 0xFF, 0x30 + rng.randrange(10), rng.randrange(256)]
                )
            if rng.random() < 0.7:  # mostly with a right checksum, so the fields are read
                damaged[148:156] = b" " * 8
                damaged[148:156] = b"%06o\0 " % sum(damaged)
            assert _parsed(FastTarInfo, bytes(damaged)) == _parsed(tarfile.TarInfo, bytes(damaged))


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_streamed_members_are_not_kept(fmt: int) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for n in range(50):
            info = tarfile.TarInfo(f"dir/{'n' * 120}{n}")
            tar.addfile(info, io.BytesIO())
    buffer.seek(0)
    with open_stream(buffer) as tar:
        names = []
        for member in members(tar):
            names.append(member.name)
            assert tar.members == []
    assert names == [f"dir/{'n' * 120}{n}" for n in range(50)]


class _Trickle(io.RawIOBase):
    """A stream that hands out at most ``piece`` bytes a read, as a decompressor may."""

    def __init__(self, data: bytes, piece: int) -> None:
        self.data, self.at, self.piece = data, 0, piece

    def read(self, size: int = -1) -> bytes:
        size = self.piece if size < 0 else min(size, self.piece)
        chunk = self.data[self.at : self.at + size]
        self.at += len(chunk)
        return chunk


def _walk(tar: tarfile.TarFile | TarStream, read_data: bool) -> list[object]:
    """Every member as the reader gives it (with its data when asked), then how the stream ended."""
    seen: list[object] = []
    try:
        while (member := tar.next()) is not None:
            data = None
            if read_data and member.isreg():
                source = tar.extractfile(member)
                assert source is not None
                data = source.read()
            seen.append((*(getattr(member, attr) for attr in ATTRS), member.offset, member.offset_data,
                         member.pax_headers, member.sparse, data))  # fmt: skip
    except (tarfile.TarError, ValueError) as error:  # tarfile lets a ValueError out of a damaged sparse map
        seen.append((type(error).__name__, str(error)))
    return seen


def _archives(tmp_path: Path) -> list[bytes]:
    """Tars GNU tar and tarfile write in each format, with every kind of entry, data, long names,
    sparse files, xattrs and global headers."""
    tree = tmp_path / "stream-tree"
    (tree / "dir" / ("long" * 40)).mkdir(parents=True)
    (tree / "dir" / "file").write_bytes(bytes(range(256)) * 7)
    (tree / "dir" / "big").write_bytes(b"y" * (5 << 19))  # read past the reader's 1 MiB buffer
    (tree / "dir" / "empty").write_bytes(b"")
    (tree / "dir" / "link").symlink_to("file")
    (tree / "dir" / ("long" * 40) / ("name" * 30)).symlink_to("../" + "t" * 150)
    (tree / "dir" / "hard").hardlink_to(tree / "dir" / "file")
    with open(tree / "sparse", "wb") as handle:
        handle.seek(1 << 20)
        handle.write(b"data")
        handle.truncate(3 << 20)
    archives = []
    for fmt in ("gnu", "oldgnu", "posix", "ustar", "v7"):
        gnu = fmt in ("gnu", "oldgnu", "posix")
        names = ["."] if gnu else ["dir/file", "dir/big", "dir/empty", "dir/link", "dir/hard", "sparse"]
        archives.append(subprocess.run(["tar", f"--format={fmt}", *(["--sparse"] if gnu else []), "-C", str(tree),
                                        "-cf", "-", *names], capture_output=True, check=True).stdout)  # fmt: skip
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=fmt, pax_headers={"comment": "global"}) as tar:
            for n in range(30):
                info = tarfile.TarInfo(f"d/{'é' * n}{n}" + "/x" * n)
                info.size = n * 100
                info.pax_headers = {"SCHILY.xattr.user.k": "v" * n} if n % 3 == 0 else {}
                tar.addfile(info, io.BytesIO(b"z" * info.size))
        archives.append(buffer.getvalue())
    return archives


def test_stream_reads_members_as_tarfile_streams_them(tmp_path: Path) -> None:
    """The members, their data and the end of the stream (an end marker, garbage, a cut anywhere,
    a damaged header) are tarfile's, in its stream mode."""
    rng = random.Random(11)
    archives = _archives(tmp_path)
    for archive in archives:
        variants = [archive, archive + b"garbage" * 100, b"", b"not a tar" * 100]
        variants += [archive[: rng.randrange(len(archive))] for _ in range(8)]
        for _ in range(8):
            damaged = bytearray(archive)
            damaged[rng.randrange(min(len(damaged), 8192))] ^= 1 << rng.randrange(8)
            variants.append(bytes(damaged))
        for data in variants:
            for read_data in (True, False):
                expected = None
                try:
                    with tarfile.open(fileobj=io.BytesIO(data), mode="r|", encoding="utf-8",
                                      errors="surrogateescape") as tar:  # fmt: skip
                        expected = _walk(tar, read_data)
                except (tarfile.TarError, ValueError) as error:
                    expected = [(type(error).__name__, str(error))]
                for piece in (7 if len(data) < 1 << 16 else 4099, 1 << 22):
                    assert _walk(open_stream(_Trickle(data, piece)), read_data) == expected


def _copied(tar: TarStream | tarfile.TarFile, scratch: Path) -> list[object]:
    """Every regular member's data, written to a file by ``copy_data`` (a TarStream) or read through
    tarfile's file object, then how the stream ended."""
    seen: list[object] = []
    try:
        while (member := tar.next()) is not None:
            if not member.isreg():
                continue
            if isinstance(tar, TarStream):
                with open(scratch, "wb") as out:
                    tar.copy_data(member, out.fileno(), chunk=4096)
                seen.append((member.name, scratch.read_bytes()))
            else:
                source = tar.extractfile(member)
                assert source is not None
                seen.append((member.name, source.read()))
    except (tarfile.TarError, ValueError) as error:
        seen.append((type(error).__name__, str(error)))
    return seen


def test_copy_data_writes_what_tarfile_reads(tmp_path: Path) -> None:
    """Plain members straight from the buffer, sparse ones with their holes, in small chunks and past
    the reader's buffer; a stream cut inside a member's data ends as tarfile's does."""
    rng = random.Random(5)
    scratch = tmp_path / "out"
    for archive in _archives(tmp_path):
        for data in [archive, *(archive[: rng.randrange(len(archive))] for _ in range(6))]:
            try:
                with tarfile.open(fileobj=io.BytesIO(data), mode="r|", encoding="utf-8",
                                  errors="surrogateescape") as tar:  # fmt: skip
                    expected = _copied(tar, scratch)
            except tarfile.TarError as error:  # cut inside the first header
                expected = [(type(error).__name__, str(error))]
            assert _copied(open_stream(_Trickle(data, 1 << 22)), scratch) == expected
