"""Importing a rootfs tarball gives the same layer, byte for byte, however its bytes reach the capture.

The trailing capture writes a regular file's contents from the bytes the extractor hands it (views
of the read buffer, several when a file straddles two reads) and reads back only a file larger
than ``KEEP_DATA``. The expected digest below was produced by the code before that change (which
read every file back from the disk): the layer may not change by a single byte.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard

from kiln.store import api, trailing, unpack
from kiln.store.blobs import BlobStore
from kiln.store.layers import capture as capture_layer
from kiln.store.tarheaders import open_stream
from kiln.store.unpack import KEEP_DATA

pytestmark = pytest.mark.root

# the layer of ``_tarball`` as the code before handed-over contents captured it
EXPECTED_DIGEST = "sha256:f943e1d81db7c415f2b416c02bd7e2e34dfc339b729795345388d38890b735e3"
EXPECTED_DIFF_ID = "sha256:2f7cf02d76337f41312ccf0562271a0c3a54adc084c8293220bac8d2a26fd94f"
MTIME = 1_700_000_000


def _bytes(label: str, size: int) -> bytes:
    return hashlib.shake_256(label.encode()).digest(size)


def _add(tar: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: Any) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode, info.mtime = fields.pop("mode", 0o644), fields.pop("mtime", MTIME)
    for key, value in fields.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _tarball() -> bytes:
    """Sorted as the trailing capture needs: files of every size around the read buffer (1 MiB) and
    ``KEEP_DATA``, more handed-over bytes than a batch holds, more entries than a batch, links,
    xattrs, a pax name, a fifo and a device."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "./", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "bin", tarfile.SYMTYPE, linkname="usr/bin", mode=0o777)
        _add(tar, "dev/", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)
        _add(tar, "etc/", tarfile.DIRTYPE, mode=0o750, gid=4, mtime=1_600_000_000)
        _add(tar, "etc/empty", mode=0o600)
        _add(tar, "etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n",
             pax_headers={"SCHILY.xattr.user.note": "kept", "SCHILY.xattr.user.other": "two"})  # fmt: skip
        _add(tar, "etc/passwd-", tarfile.LNKTYPE, linkname="etc/passwd")
        _add(tar, "etc/shadow", data=b"root:*:1::::::\n", mode=0o640, gid=42)
        _add(tar, "run/", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "run/fifo", tarfile.FIFOTYPE, mode=0o600)
        _add(tar, "usr/", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "usr/bin/", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "usr/bin/su", data=_bytes("su", 70_001), mode=0o4755, uid=0, gid=0)
        _add(tar, "usr/bin/tool", data=_bytes("tool", 123_457), mode=0o2755, uid=1000, gid=1000)
        _add(tar, "usr/lib/", tarfile.DIRTYPE, mode=0o755)
        for n in range(40):  # 20 MiB handed over: past HELD_MAX, many straddling the reads
            _add(tar, f"usr/lib/blob{n:02d}", data=_bytes(f"blob{n}", 500_000 + 37 * n))
        _add(tar, "usr/lib/huge", data=_bytes("huge", KEEP_DATA + 4321))  # read back from the disk
        _add(tar, "usr/lib/huge-link", tarfile.LNKTYPE, linkname="usr/lib/huge")
        _add(tar, "usr/lib/just-kept", data=_bytes("kept", KEEP_DATA))
        _add(tar, "usr/share/", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "usr/share/" + "n" * 130, data=b"a name that needs a pax header\n")
        _add(tar, "var/", tarfile.DIRTYPE, mode=0o755, mtime=1_650_000_000)
        for n in range(trailing.BATCH + 99):
            _add(tar, f"var/{n:05d}", data=_bytes(f"var{n}", n % 1500))
    return out.getvalue()


def _compressed(data: bytes, kind: str) -> bytes:
    if kind == "gz":
        return gzip.compress(data, mtime=0)
    if kind == "zst":
        return zstandard.ZstdCompressor(level=3).compress(data)
    return data


def _tree(root: Path) -> list[tuple[Any, ...]]:
    """Path, type and mode, owner, size, mtime, xattrs, link target and content hash of every entry."""
    rows: list[tuple[Any, ...]] = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(directory, name)
            st = os.lstat(path)
            xattrs = sorted((key, os.getxattr(path, key, follow_symlinks=False))
                            for key in os.listxattr(path, follow_symlinks=False))  # fmt: skip
            content = hashlib.sha256(Path(path).read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else None
            link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            rows.append((os.path.relpath(path, root), st.st_mode, st.st_uid, st.st_gid, st.st_size,
                         st.st_mtime_ns, st.st_nlink, st.st_rdev, xattrs, link, content))  # fmt: skip
    return rows


def _expected_tree(data: bytes) -> dict[str, tuple[Any, ...]]:
    """What the tarball says each entry is (type and mode, owner, mtime, contents or target)."""
    expected: dict[str, tuple[Any, ...]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            name = member.name.rstrip("/").removeprefix("./")
            if name in ("", "."):
                continue
            source = tar.extractfile(member) if member.isreg() else None
            content = hashlib.sha256(source.read()).hexdigest() if source else None
            if member.islnk():
                content = expected[member.linkname][4]
            expected[name] = (member.type if not member.islnk() else tarfile.REGTYPE, member.mode & 0o7777,
                              member.uid, member.gid, content, member.linkname if member.issym() else None)  # fmt: skip
    return expected


@pytest.mark.parametrize("compression", ["tar", "gz", "zst"])
def test_import_gives_the_layer_of_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcomes: list[bool], compression: str
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    plain = _tarball()
    source = tmp_path / f"rootfs.{compression}"
    source.write_bytes(_compressed(plain, compression))
    ami = api.import_rootfs(source, name=f"equivalence-{compression}", allow_devices=True)
    assert outcomes == [False]  # the trailing capture wrote the layer
    layer = api.image_layers(ami)[0]
    assert (layer.digest, layer.diff_id) == (EXPECTED_DIGEST, EXPECTED_DIFF_ID)

    rows = {row[0]: row for row in _tree(api.layer_dirs(ami)[0])}
    kinds = {tarfile.REGTYPE: stat.S_IFREG, tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK,
             tarfile.CHRTYPE: stat.S_IFCHR, tarfile.FIFOTYPE: stat.S_IFIFO}  # fmt: skip
    expected = _expected_tree(plain)
    assert sorted(rows) == sorted(expected)
    for name, (kind, mode, uid, gid, content, link) in expected.items():
        row = rows[name]
        perm = 0o777 if kind == tarfile.SYMTYPE else mode
        assert (row[1], row[2], row[3], row[9], row[10]) == (kinds[kind] | perm, uid, gid, link, content), name
        assert row[5] == MTIME * 10**9 or name in ("etc", "var"), name
    assert rows["etc"][5] == 1_600_000_000 * 10**9 and rows["var"][5] == 1_650_000_000 * 10**9
    assert rows["etc/passwd"][8] == [("user.note", b"kept"), ("user.other", b"two")]
    assert rows["etc/passwd"][6] == rows["usr/lib/huge"][6] == 2
    assert os.major(rows["dev/null"][7]) == 1 and os.minor(rows["dev/null"][7]) == 3


def test_copy_data_hands_over_exactly_the_bytes_written(tmp_path: Path) -> None:
    """Views of the read buffer, in order, adding up to the member's data (several when a member
    straddles two reads); None past ``keep``."""
    plain = _tarball()
    out = tmp_path / "out"
    seen = 0
    with open_stream(io.BytesIO(plain)) as tar:  # type: ignore[arg-type]
        while (member := tar.next()) is not None:
            if not member.isreg():
                continue
            with open(out, "wb") as handle:
                kept = tar.copy_data(member, handle.fileno(), keep=KEEP_DATA)
            written = out.read_bytes()
            if member.size > KEEP_DATA:
                assert kept is None
            else:
                assert kept is not None and b"".join(bytes(piece) for piece in kept) == written
                seen += len(kept) > 1
            assert len(written) == member.size
    assert seen  # some member did straddle two reads


def test_a_batch_keeps_few_read_buffers_alive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small files far apart in the stream each keep a read buffer alive: the batch is captured once
    those buffers pass ``HELD_MAX``, not when the files' own bytes do (the layer is the same)."""
    monkeypatch.setattr(unpack, "KEEP_DATA", 100_000)
    monkeypatch.setattr(trailing, "HELD_MAX", 3 << 20)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "data/", tarfile.DIRTYPE, mode=0o755)
        for n in range(20):
            _add(tar, f"data/{n:02d}-a-small", data=_bytes(f"small{n}", 10))
            _add(tar, f"data/{n:02d}-b-large", data=_bytes(f"large{n}", 1_500_000))  # read back
    source = tmp_path / "spread.tar"
    source.write_bytes(out.getvalue())
    held: list[tuple[int, int, bool]] = []
    original = trailing.TrailingCapture._capture

    def capture(self: trailing.TrailingCapture) -> None:
        held.append((len(self._batch), self._held, self.given_up))
        original(self)

    monkeypatch.setattr(trailing.TrailingCapture, "_capture", capture)
    ami = api.import_rootfs(source, name="spread")
    assert not any(gave_up for _, _, gave_up in held)
    assert len(held) >= 5 and all(entries < 2 * 20 for entries, _, _ in held)
    assert max(size for _, size, _ in held) <= (3 << 20) + (2 << 20)  # HELD_MAX and the buffer passing it
    layer_dir = api.layer_dirs(ami)[0]
    assert capture_layer(layer_dir, BlobStore(tmp_path / "again")).digest == api.image_layers(ami)[0].digest
