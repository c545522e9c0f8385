"""kiln's fast tar header parser reads every header as tarfile's own parser does (or leaves it to it)."""

from __future__ import annotations

import io
import random
import subprocess
import tarfile
from pathlib import Path

import pytest

from kiln.store.tarheaders import FastTarInfo, members, open_stream

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
