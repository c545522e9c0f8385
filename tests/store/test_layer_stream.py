"""The capture's pipeline (kiln.store.layer_stream): the tar hashed, compressed and written on three
threads. Whatever the block size, the number of blocks in flight and the threads' timing, a tree gives
the same bytes: those of the tar written and compressed in one go. A failing stage stops the capture
with its error and leaves no thread behind."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
import tarfile
import threading
import time
from pathlib import Path

import pytest
import zstandard

from kiln.store import layer_stream
from kiln.store.blobs import BlobStore
from kiln.store.layers import ZSTD_LEVEL, ZSTD_THREADS, capture, write_tar


def _tree(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "a.conf").write_text("alpha\n")
    (root / "etc" / "empty").write_bytes(b"")
    pattern = os.urandom(3000)
    for n in range(10):  # compressible, several MiB: several of zstd's jobs
        (root / "etc" / f"big-{n}").write_bytes(pattern * (300 + 37 * n))
    (root / "bin").mkdir()
    (root / "bin" / "random").write_bytes(os.urandom(1_500_001))  # not a multiple of any block
    os.symlink("../etc/a.conf", root / "bin" / "link")
    return root


def _reference(root: Path) -> tuple[bytes, bytes]:
    """The tar, and that tar compressed by one stream writer in one write (no pipeline)."""
    plain = io.BytesIO()
    write_tar(root, plain)
    out = io.BytesIO()
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=ZSTD_THREADS, write_checksum=True)
    with compressor.stream_writer(out, closefd=False) as writer:
        writer.write(plain.getvalue())
    return plain.getvalue(), out.getvalue()


def _layer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("layer-")]


@pytest.mark.parametrize(("block_size", "blocks"), [(512, 2), (4096, 1), (65_536, 3), (None, None)])
def test_same_bytes_whatever_the_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        block_size: int | None, blocks: int | None) -> None:
    root = _tree(tmp_path / "tree")
    tar_bytes, blob_bytes = _reference(root)
    if block_size is not None:
        monkeypatch.setattr(layer_stream, "BLOCK_SIZE", block_size)
        monkeypatch.setattr(layer_stream, "BLOCKS", blocks)
    store = BlobStore(tmp_path / "store")
    layer = capture(root, store)
    assert layer.diff_id == "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    assert layer.digest == "sha256:" + hashlib.sha256(blob_bytes).hexdigest()
    assert (store.blob_dir / layer.digest.split(":")[1]).read_bytes() == blob_bytes
    assert layer.size == len(blob_bytes)
    assert _layer_threads() == []


def test_same_bytes_whatever_the_threads_timing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stages stalled at random (a slow disk, a busy machine) change when blocks move, not the bytes."""
    root = _tree(tmp_path / "tree")
    _, blob_bytes = _reference(root)
    monkeypatch.setattr(layer_stream, "BLOCK_SIZE", 256 << 10)
    monkeypatch.setattr(layer_stream, "BLOCKS", 2)

    class Stalling(io.BytesIO):
        def __init__(self, seed: int) -> None:
            super().__init__()
            self.rng = random.Random(seed)

        def write(self, data: bytes) -> int:  # type: ignore[override]
            time.sleep(self.rng.choice((0, 0, 0.001, 0.005)))
            return super().write(data)

    outputs = set()
    for seed in range(3):
        target = Stalling(seed)
        write_tar(root, target, compression="zstd")
        outputs.add(target.getvalue())
    assert outputs == {blob_bytes}


def test_the_uncompressed_stream_is_the_tar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path / "tree")
    monkeypatch.setattr(layer_stream, "BLOCK_SIZE", 10_000)  # files span several blocks
    out = io.BytesIO()
    diff_id = write_tar(root, out)
    assert diff_id == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert tar.extractfile("bin/random").read() == (root / "bin" / "random").read_bytes()  # type: ignore[union-attr]
        assert tar.getmember("etc/empty").size == 0
    assert len(out.getvalue()) % tarfile.RECORDSIZE == 0


def test_a_failing_writer_stops_a_compressed_capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path / "tree")
    monkeypatch.setattr(layer_stream, "BLOCK_SIZE", 64 << 10)

    class Full(io.RawIOBase):
        written = 0

        def write(self, data: bytes) -> int:  # type: ignore[override]
            self.written += len(data)
            if self.written > 100_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return len(data)

    with pytest.raises(OSError, match="No space left"):
        write_tar(root, Full(), compression="zstd")
    assert _layer_threads() == []
