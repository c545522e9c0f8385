"""Blobs into another region's store: linked on one filesystem, copied across filesystems, once per
region, and a corrupt source blob never enters the target."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.store.blobs import BlobQuarantined, BlobStore
from kiln.store.copying import transfer_blobs


@pytest.fixture
def other_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A directory on another filesystem than ``tmp_path`` (the root filesystem, when tests run in RAM)."""
    root = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="kiln-copy-test-"))
    try:
        if root.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("no second filesystem here")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_same_filesystem_links_each_blob_once(tmp_path: Path) -> None:
    source, dest = BlobStore(tmp_path / "a"), BlobStore(tmp_path / "b")
    one, two = source.put_bytes(b"one" * 1000), source.put_bytes(b"two" * 1000)
    first = transfer_blobs(source, dest, [one, one])
    assert first.linked == [one] and first.copied == [] and first.bytes_moved == 3000
    assert dest.path(one).samefile(source.path(one))
    second = transfer_blobs(source, dest, [one, two])
    assert second.present == [one] and second.linked == [two]
    assert sorted(dest.all_digests()) == sorted([one, two])
    assert not any(dest.tmp_dir.iterdir())


def test_another_filesystem_copies_and_verifies(tmp_path: Path, other_filesystem: Path) -> None:
    source, dest = BlobStore(tmp_path / "a"), BlobStore(other_filesystem / "b")
    digest = source.put_bytes(b"layer bytes")
    done = transfer_blobs(source, dest, [digest])
    assert done.copied == [digest] and done.linked == []
    assert not dest.path(digest).samefile(source.path(digest))
    assert dest.read_bytes(digest) == b"layer bytes"


def test_a_corrupt_source_blob_is_quarantined_and_not_copied(tmp_path: Path) -> None:
    source, dest = BlobStore(tmp_path / "a"), BlobStore(tmp_path / "b")
    digest = source.put_bytes(b"good bytes")
    source.path(digest).write_bytes(b"rotten bytes")
    with pytest.raises(BlobQuarantined):
        transfer_blobs(source, dest, [digest])
    assert not dest.exists(digest) and not source.exists(digest)
    assert not any(dest.tmp_dir.iterdir())


def test_a_blob_written_here_and_unchanged_is_linked_without_a_second_read(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.store import copying

    source, dest, third = BlobStore(tmp_path / "a"), BlobStore(tmp_path / "b"), BlobStore(tmp_path / "c")
    digest = source.put_bytes(b"fresh layer" * 100)
    assert source.verified_unchanged(digest)
    hashed: list[Path] = []
    original = copying._hash
    monkeypatch.setattr(copying, "_hash", lambda path: (hashed.append(path), original(path))[1])
    assert transfer_blobs(source, dest, [digest]).linked == [digest]
    assert transfer_blobs(dest, dest, [digest]).present == [digest]  # refreshed for gc, still known
    assert transfer_blobs(source, third, [digest]).linked == [digest]
    assert hashed == []
    # the same bytes rewritten in place (same size): the stamp is gone, the copy reads and checks it
    source.path(digest).write_bytes(b"fresh layeR" * 100)
    with pytest.raises(BlobQuarantined):
        transfer_blobs(source, BlobStore(tmp_path / "d"), [digest])
    assert len(hashed) == 1


def test_a_blob_this_process_did_not_write_is_read_and_checked(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.store import blobs, copying

    source, dest = BlobStore(tmp_path / "a"), BlobStore(tmp_path / "b")
    digest = source.put_bytes(b"from another process")
    monkeypatch.setattr(blobs, "VERIFIED", blobs._Verified())  # a process that never hashed it
    assert not source.verified_unchanged(digest)
    hashed: list[Path] = []
    original = copying._hash
    monkeypatch.setattr(copying, "_hash", lambda path: (hashed.append(path), original(path))[1])
    assert transfer_blobs(source, dest, [digest]).linked == [digest]
    assert len(hashed) == 1
