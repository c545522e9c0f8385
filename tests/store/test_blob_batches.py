"""Blobs written in a batch: each blob's data fsynced once, its directory once per batch, and always
before anything that may name the blobs (``index.json``) is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiln.store import blobs as blobs_module
from kiln.store.blobs import BlobStore, batched_dir_sync
from kiln.store.copying import transfer_blobs
from kiln.store.layout import MANIFEST_TYPE, Descriptor, Layout
from kiln.store.referrers import attach_many


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every file or directory fsynced, in order (the real fsync still runs)."""
    calls: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


def _dir_syncs(calls: list[str], directory: Path) -> int:
    return sum(1 for path in calls if path == str(directory))


def test_without_a_batch_each_blob_syncs_its_directory(tmp_path: Path, synced: list[str]) -> None:
    store = BlobStore(tmp_path / "region")
    for index in range(3):
        store.put_bytes(b"blob %d" % index)
    assert _dir_syncs(synced, store.blob_dir) == 3
    assert sum(1 for path in synced if "/tmp/blob-" in path) == 3


def test_a_batch_syncs_each_blob_once_and_the_directory_once(tmp_path: Path, synced: list[str]) -> None:
    store = BlobStore(tmp_path / "region")
    with batched_dir_sync():
        digests = [store.put_bytes(b"blob %d" % index) for index in range(5)]
        with batched_dir_sync():  # nested: the outermost block syncs
            digests.append(store.put_bytes(b"nested"))
        assert _dir_syncs(synced, store.blob_dir) == 0
    assert _dir_syncs(synced, store.blob_dir) == 1
    assert sum(1 for path in synced if "/tmp/blob-" in path) == 6  # every blob's data, once
    assert all(store.hash_file(digest) == digest for digest in digests)
    store.put_bytes(b"after the batch")  # the batch is over: back to one sync each
    assert _dir_syncs(synced, store.blob_dir) == 2


def test_a_failed_batch_still_syncs_what_it_renamed(tmp_path: Path, synced: list[str]) -> None:
    store = BlobStore(tmp_path / "region")
    with pytest.raises(RuntimeError), batched_dir_sync():
        store.put_bytes(b"kept")
        raise RuntimeError("boom")
    assert _dir_syncs(synced, store.blob_dir) == 1
    assert getattr(blobs_module._pending, "dirs", None) is None


def test_index_json_is_written_after_the_blobs_it_may_name_are_synced(tmp_path: Path, synced: list[str]) -> None:
    layout = Layout(tmp_path / "region")
    layout.ensure()
    synced.clear()
    with batched_dir_sync():
        data = b'{"schemaVersion":2}'
        digest = layout.blobs.put_bytes(data)
        layout.add_ref("ami-0123456789abcdef0", Descriptor(MANIFEST_TYPE, digest, len(data)))
        put_after = layout.blobs.put_bytes(b"written after the index")
    index_write = next(i for i, path in enumerate(synced) if "/.index.json." in path)
    dir_syncs = [i for i, path in enumerate(synced) if path == str(layout.blobs.blob_dir)]
    assert dir_syncs[0] < index_write  # the blob's rename is durable before index.json names it
    assert len(dir_syncs) == 2  # and the blob renamed after the index, when the block ended
    assert layout.refs() == {"ami-0123456789abcdef0": digest}
    assert layout.blobs.exists(put_after)


def test_a_transfer_syncs_the_target_directory_once(tmp_path: Path, synced: list[str]) -> None:
    source, dest = BlobStore(tmp_path / "a"), BlobStore(tmp_path / "b")
    digests = [source.put_bytes(b"layer %d" % index) for index in range(4)]
    synced.clear()
    done = transfer_blobs(source, dest, digests)
    assert sorted(done.linked) == sorted(digests)
    assert _dir_syncs(synced, dest.blob_dir) == 1
    assert all(dest.hash_file(digest) == digest for digest in digests)


def test_attaching_artifacts_syncs_the_blob_directory_once(tmp_path: Path, synced: list[str]) -> None:
    layout = Layout(tmp_path / "region")
    layout.ensure()
    data = b'{"schemaVersion":2}'
    subject = Descriptor(MANIFEST_TYPE, layout.blobs.put_bytes(data), len(data))
    synced.clear()
    attach_many(layout, subject, [("application/spdx+json", b"{}"), ("application/vnd.cyclonedx+json", b"[]")],
                created="2026-01-01T00:00:00Z")
    index_write = next(i for i, path in enumerate(synced) if "/.index.json." in path)
    dir_syncs = [i for i, path in enumerate(synced) if path == str(layout.blobs.blob_dir)]
    # the empty config, two artifacts with their manifests and the referrers listing: 6 blobs, 1 sync
    assert sum(1 for path in synced if "/tmp/blob-" in path) == 6
    assert len(dir_syncs) == 1 and dir_syncs[0] < index_write


def test_a_large_blob_starts_its_write_out_as_it_is_written_and_is_still_fsynced(
        tmp_path: Path, synced: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[int, int]] = []
    real = blobs_module.start_writeback

    def spy(fd: int, offset: int, length: int) -> None:
        started.append((offset, length))
        real(fd, offset, length)

    monkeypatch.setattr(blobs_module, "start_writeback", spy)
    store = BlobStore(tmp_path / "region")
    chunk = os.urandom(1 << 20)
    with store.writer() as writer:
        for _ in range(20):
            writer.write(chunk)
        digest = writer.commit()
    step = blobs_module.WRITEBACK_STEP
    assert started == [(0, step), (step, step)]  # whole steps as they fill; the rest is the fsync's
    assert any("/tmp/blob-" in path for path in synced)  # the data fsynced before it became the blob
    assert store.path(digest).read_bytes() == chunk * 20
