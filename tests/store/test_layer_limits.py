"""A layer may not unpack past the image's root volume nor past KILN_HOME's free space (kiln.store.limits).

Bombs are refused at the entry that crosses the limit, before its data is written: a compressed bomb,
a sparse file counted at its apparent size. Hard-linked data counts once.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard
from tests.conftest import needs_root
from tests.store.conftest import oci_layout

from kiln.home import cache_dir
from kiln.store import api
from kiln.store.layout import LAYER_ZSTD
from kiln.store.limits import (
    DEFAULT_VOLUME_GIB,
    FREE_SPACE_RESERVE,
    GIB,
    free_space_limit,
    import_limit,
    root_volume_gib,
)

MIB = 1 << 20


class _Zeros(io.RawIOBase):
    def readinto(self, buffer: Any) -> int:
        buffer[:] = bytes(len(buffer))
        return len(buffer)


def _bomb_tar(sink: Any, size: int) -> None:
    """A tar with a small file, then ``size`` bytes of zeros as one file: what a bomb unpacks to."""
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"bomb\n"))
        info = tarfile.TarInfo("zeros")
        info.size = size
        tar.addfile(info, _Zeros())


def _gzip_bomb(path: Path, size: int) -> Path:
    with gzip.GzipFile(path, "wb", compresslevel=6, mtime=0) as sink:
        _bomb_tar(sink, size)
    return path


def _zstd_bomb(path: Path, size: int) -> Path:
    with open(path, "wb") as raw, zstandard.ZstdCompressor(level=19).stream_writer(raw) as sink:
        _bomb_tar(sink, size)
    return path


LIMIT = {"KILN_LAYER_SIZE_LIMIT": str(4 * MIB)}


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_a_compression_bomb_tarball_is_refused_at_its_entry(
    tmp_path: Path, kind: str, refused_import: Callable[..., str]
) -> None:
    make = _gzip_bomb if kind == "gzip" else _zstd_bomb
    bomb = make(tmp_path / f"bomb.tar.{kind}", 128 * MIB)
    assert bomb.stat().st_size < 200_000  # 128 MiB of data in a small file
    error = refused_import(bomb, env=LIMIT)
    assert error == (
        f"layer {bomb}, entry zeros: layer expands past the size limit of 4194304 bytes (KILN_LAYER_SIZE_LIMIT)"
    )


def test_a_compression_bomb_layer_of_an_oci_layout_is_refused(
    tmp_path: Path, refused_import: Callable[..., str]
) -> None:
    bomb = _zstd_bomb(tmp_path / "layer.tar.zst", 256 * MIB)
    digest = "sha256:" + hashlib.sha256(bomb.read_bytes()).hexdigest()
    layout = oci_layout(tmp_path / "oci", bomb.read_bytes(), LAYER_ZSTD, "sha256:" + "0" * 64).root
    blobs_before = sorted((cache_dir().parent / "regions").rglob("blobs/sha256/*"))
    error = refused_import(layout, env=LIMIT)
    assert error == (
        f"layer {digest}, entry zeros: layer expands past the size limit of 4194304 bytes (KILN_LAYER_SIZE_LIMIT)"
    )
    # the recompressed copy was abandoned, not committed as a blob
    assert sorted((cache_dir().parent / "regions").rglob("blobs/sha256/*")) == blobs_before


def _sparse_tar(tmp_path: Path, apparent: int) -> Path:
    """A GNU tar of one sparse file of ``apparent`` bytes holding a few bytes of data."""
    tree = tmp_path / "sparse-tree"
    tree.mkdir()
    with open(tree / "disk.img", "wb") as handle:
        handle.truncate(apparent)
        handle.seek(apparent // 2)
        handle.write(b"data")
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "-C", str(tree), "-cf", str(archive), "disk.img"], check=True)
    (tree / "disk.img").unlink()
    return archive


def test_a_sparse_file_counts_at_its_apparent_size(tmp_path: Path, refused_import: Callable[..., str]) -> None:
    archive = _sparse_tar(tmp_path, 64 * GIB)
    assert archive.stat().st_size <= 20_480  # a ~10 KB tar unpacking to 64 GiB
    error = refused_import(archive, env={"KILN_LAYER_SIZE_LIMIT": str(GIB)})
    assert error == (
        f"layer {archive}, entry disk.img: layer expands past the size limit of 1 GiB (KILN_LAYER_SIZE_LIMIT)"
    )


def test_the_default_limit_refuses_a_layer_larger_than_the_8_gib_volume(
    tmp_path: Path, refused_import: Callable[..., str]
) -> None:
    archive = _sparse_tar(tmp_path, 9 * GIB)
    error = refused_import(archive, env={"KILN_LAYER_SIZE_LIMIT": None})
    assert error == f"layer {archive}, entry disk.img: layer expands past the size limit of {import_limit()}"
    assert "8 GiB root volume" in error or "free space" in error


def test_hard_linked_data_counts_once(tmp_path: Path, kiln: Callable[..., Any]) -> None:
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("data")
        info.size = 3 * MIB
        tar.addfile(info, _Zeros())
        for n in range(20):  # 60 MiB if each link counted its target's data
            link = tarfile.TarInfo(f"link{n}")
            link.type, link.linkname = tarfile.LNKTYPE, "data"
            tar.addfile(link)
    result = kiln("image", "import", str(archive), "--name", "links", env=LIMIT)
    assert result.exit_code == 0, result.stderr
    top = api.layer_dirs(result.stdout.strip())[0]
    assert os.stat(top / "link19").st_nlink == 21


def test_the_default_is_the_8_gib_volume_or_the_free_space_less_the_reserve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_LAYER_SIZE_LIMIT", raising=False)
    default = import_limit()
    free = os.statvfs(cache_dir())
    room = free.f_bavail * free.f_frsize - FREE_SPACE_RESERVE
    assert DEFAULT_VOLUME_GIB == 8
    # the free space moves a little as other tests write: compare within 64 MiB
    assert abs(default.bytes - min(8 * GIB, room)) < 64 * MIB
    if room > 9 * GIB:
        assert default.bytes == 8 * GIB and default.reason == "the image's 8 GiB root volume"
        assert abs(import_limit(20).bytes - min(20 * GIB, free_space_limit().bytes)) < 64 * MIB
    monkeypatch.setenv("KILN_LAYER_SIZE_LIMIT", str(5 * MIB))
    assert import_limit().bytes == 5 * MIB  # an explicit limit replaces the volume size


@needs_root()
def test_the_free_space_of_kiln_home_bounds_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused_import: Callable[..., str]
) -> None:
    """KILN_HOME's cache on a 1.5 GiB file system: 512 MiB may be unpacked, whatever the volume."""
    monkeypatch.delenv("KILN_LAYER_SIZE_LIMIT", raising=False)
    archive = _sparse_tar(tmp_path, 600 * MIB)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536m", "tmpfs", str(cache)], check=True)
    try:
        limit = import_limit()
        assert 500 * MIB < limit.bytes <= 512 * MIB
        assert limit.reason == "the free space of KILN_HOME less a 1 GiB reserve"
        error = refused_import(archive)
        assert error == f"layer {archive}, entry disk.img: layer expands past the size limit of {limit}"
    finally:
        subprocess.run(["umount", str(cache)], check=True)


def test_the_volume_size_comes_from_the_recipes_root_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_LAYER_SIZE_LIMIT", raising=False)
    mappings = [
        {"deviceName": "/dev/sdb", "ebs": {"volumeSize": 500}},
        {"deviceName": "/dev/xvda", "ebs": {"volumeSize": 2, "volumeType": "gp3"}},
    ]
    assert root_volume_gib(mappings) == 2
    assert root_volume_gib([{"deviceName": "/dev/sdb", "ebs": {"volumeSize": 500}}]) is None
    assert root_volume_gib(None) is None
    limit = import_limit(root_volume_gib(mappings))
    assert limit.bytes == min(2 * GIB, free_space_limit().bytes)


def test_a_directory_larger_than_the_limit_is_refused(tmp_path: Path, refused_import: Callable[..., str]) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "big").write_bytes(b"\0" * (5 * MIB))
    error = refused_import(tree, env=LIMIT)
    assert error == f"{tree}: directory expands past the size limit of 4194304 bytes (KILN_LAYER_SIZE_LIMIT)"
