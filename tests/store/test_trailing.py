"""A capture trailing the extraction writes the very bytes a capture of the finished tree writes."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from kiln.errors import InvalidInput
from kiln.store import api, trailing
from kiln.store.blobs import BlobStore
from kiln.store.layers import capture
from kiln.store.layout import Layout

pytestmark = pytest.mark.root


def _add(tar: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: Any) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode, info.mtime = fields.pop("mode", 0o644), fields.pop("mtime", 1_700_000_000)
    for key, value in fields.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


LONG = "usr/share/" + "d" * 120  # a name that needs a pax header


def sorted_tarball(path: Path) -> Path:
    """Directories before their entries, names sorted within each (as ``tar --sort=name`` writes)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "./", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "bin", tarfile.SYMTYPE, linkname="usr/bin")
        _add(tar, "etc/", tarfile.DIRTYPE, mode=0o750, gid=4, mtime=1_600_000_000)
        _add(tar, "etc/future", data=b"later\n", mtime=1_900_000_000)
        _add(tar, "etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n", pax_headers={"SCHILY.xattr.user.k": "v"})
        _add(tar, "etc/passwd-", tarfile.LNKTYPE, linkname="etc/passwd")
        _add(tar, "etc/passwd.bak", tarfile.LNKTYPE, linkname="etc/passwd-")  # a link to a link's name
        _add(tar, "run/", tarfile.DIRTYPE, mode=0o755, mtime=1_900_000_000)
        _add(tar, "run/fifo", tarfile.FIFOTYPE, mode=0o600)
        _add(tar, "usr/", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "usr/bin/", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "usr/bin/tool", data=os.urandom(200_000), mode=0o4755, uid=1000, gid=1000)
        _add(tar, "usr/share/", tarfile.DIRTYPE, mode=0o755)
        _add(tar, LONG, data=b"long\n")
        _add(tar, "var/", tarfile.DIRTYPE, mode=0o755)
        for n in range(2 * trailing.BATCH + 7):  # several hand-overs to the capture thread
            _add(tar, f"var/{n:05d}", data=b"x" * (n % 3))
    return path


def _recaptured(layer_dir: Path, tmp_path: Path) -> str:
    return capture(layer_dir, BlobStore(tmp_path / "again")).digest


@pytest.mark.parametrize("epoch", [None, "1800000000"])
def test_trailing_capture_matches_a_capture_of_the_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcomes: list[bool], epoch: str | None
) -> None:
    if epoch:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
    ami = api.import_rootfs(sorted_tarball(tmp_path / "sorted.tar"), name="sorted")
    assert outcomes == [False]
    layer = api.image_layers(ami)[0]
    layer_dir = api.layer_dirs(ami)[0]
    assert (layer_dir / "etc" / "passwd-").stat().st_ino == (layer_dir / "etc" / "passwd").stat().st_ino
    assert (layer_dir / "etc" / "passwd.bak").stat().st_nlink == 3
    assert len(os.listdir(layer_dir / "var")) == 2 * trailing.BATCH + 7
    assert _recaptured(layer_dir, tmp_path) == layer.digest


@pytest.mark.parametrize("case", ["unsorted", "implicit-dir", "fractional-dir-mtime"])
def test_other_tarballs_are_captured_once_extracted(
    tmp_path: Path, outcomes: list[bool], case: str
) -> None:
    with tarfile.open(tmp_path / "rootfs.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "etc/", tarfile.DIRTYPE, mode=0o755, mtime=1_700_000_000.5 if case.startswith("frac") else 1)
        if case == "unsorted":
            _add(tar, "etc/b", data=b"b")
            _add(tar, "etc/a", data=b"a")
        else:
            _add(tar, "etc/a", data=b"a")
            _add(tar, "var/lib/x" if case == "implicit-dir" else "etc/b", data=b"x")
    ami = api.import_rootfs(tmp_path / "rootfs.tar", name=case)
    assert outcomes == [True]
    assert _recaptured(api.layer_dirs(ami)[0], tmp_path) == api.image_layers(ami)[0].digest


def test_a_hostile_entry_stops_the_trailing_capture_too(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "evil.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "etc/", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "etc/ok", data=os.urandom(100_000))
        _add(tar, "etc/x", tarfile.SYMTYPE, linkname="../../outside")
    with pytest.raises(InvalidInput, match="escapes the root"):
        api.import_rootfs(tmp_path / "evil.tar", name="evil")
    blobs = Layout.for_region("local").blobs
    assert blobs.all_digests() == []
    assert not blobs.tmp_dir.exists() or list(blobs.tmp_dir.iterdir()) == []
