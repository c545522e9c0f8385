"""Garbage collection (grace period, pins), fsck quarantine, and crash safety of blob writes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiln.errors import NotFound
from kiln.home import region_dir
from kiln.store import api
from kiln.store.layout import Layout


def _age(path: Path, seconds: int = 7200) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_gc_respects_grace_period_and_pins(base_ami: str, blob_files) -> None:
    layout = Layout.for_region("local")
    stray = layout.blobs.put_bytes(b"unreferenced blob" * 100)
    pinned_blob = layout.blobs.put_bytes(b"a build is writing this" * 100)
    live = set(blob_files()) - {stray, pinned_blob}

    fresh = api.gc(dry_run=True)
    assert stray in fresh.kept_in_grace and fresh.deleted == []

    for digest in (stray, pinned_blob):
        _age(layout.blobs.path(digest))
    with api.pinned("local", [pinned_blob], "build-123"):
        preview = api.gc(dry_run=True)
        assert [d for d, _ in preview.deleted] == [stray]
        assert preview.freed_bytes == len(b"unreferenced blob" * 100)
        assert stray in blob_files()  # dry run deleted nothing
        result = api.gc()
        assert pinned_blob in result.kept_pinned
    assert set(blob_files()) == live | {pinned_blob}
    assert [d for d, _ in api.gc().deleted] == [pinned_blob]
    assert set(blob_files()) == live
    assert api.layer_dirs(base_ami)  # referenced blobs survived


def test_gc_collects_deregistered_manifest_but_not_snapshot_layers(base_ami: str, blob_files) -> None:
    snap = api.get_image(base_ami).snapshot_ids[0]
    layer = api.get_snapshot(snap).layers[0]
    api.deregister_image(base_ami)
    for path in (region_dir() / "blobs" / "sha256").iterdir():
        _age(path)
    api.gc()
    assert layer in blob_files()  # the orphaned snapshot still holds it
    api.delete_snapshot(snap)
    assert blob_files() == {}


def test_fsck_quarantines_corrupt_blob(base_ami: str) -> None:
    layer = api.image_layers(base_ami)[0].digest
    path = region_dir() / "blobs" / "sha256" / layer.split(":")[1]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    report = api.fsck()
    assert report.corrupt == [layer] and not report.ok
    assert not path.exists()
    assert (region_dir() / "quarantine" / layer.split(":")[1]).exists()
    assert any(layer in problem for problem in report.problems)
    with pytest.raises(NotFound, match="quarantined"):
        api.layer_dirs(base_ami)
    with pytest.raises(NotFound, match="quarantined"):
        api.export_image(base_ami, "oci-archive", region_dir().parent / "x.tar")


def test_fsck_clean_store_is_ok(base_ami: str) -> None:
    report = api.fsck()
    assert report.ok and report.blobs_checked == 3  # layer, config, manifest


def test_corruption_caught_at_unpack_time(base_ami: str) -> None:
    layer = api.image_layers(base_ami)[0].digest
    path = region_dir() / "blobs" / "sha256" / layer.split(":")[1]
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01
    path.write_bytes(bytes(data))
    cache = region_dir().parent.parent / "cache" / "layers"
    shutil.rmtree(cache / layer.split(":")[1])  # as on a fresh machine: unpack from the blob
    with pytest.raises(NotFound):
        api.layer_dirs(base_ami)
    assert not path.exists()
    assert not any(
        p.name == layer.split(":")[1] for p in (region_dir().parent.parent / "cache" / "layers").iterdir()
    )


WRITER = """
import os, sys
from pathlib import Path
from kiln.store.blobs import BlobStore
store = BlobStore(Path(sys.argv[1]))
with store.writer() as writer:
    chunk = os.urandom(1 << 20)
    print("writing", flush=True)
    for _ in range(100000):
        writer.write(chunk)
    writer.commit()
"""


def test_killed_blob_write_leaves_no_partial_blob(base_ami: str, blob_files) -> None:
    before = blob_files()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(region_dir())], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"writing"
        tmp = region_dir() / "tmp"
        deadline = time.time() + 30
        while time.time() < deadline and not any(p.stat().st_size > (8 << 20) for p in tmp.iterdir()):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert blob_files() == before  # nothing partial in blobs/
    partials = list((region_dir() / "tmp").iterdir())
    assert partials  # the partial stayed in tmp/ ...
    report = api.fsck()
    assert report.ok  # ... and nothing references it
    for partial in partials:
        _age(partial)
    assert api.gc().tmp_removed
    assert list((region_dir() / "tmp").iterdir()) == []


def test_gc_prunes_unpacked_dirs_of_deleted_blobs(base_ami: str, tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "x").write_text("x")
    child = api.create_image_from_upper(base_ami, upper, name="child")
    top = api.layer_dirs(child)[1]
    api.deregister_image(child, delete_snapshots=True)
    assert top.exists()  # a running instance may still use it until gc
    with api.pinned("local", ["sha256:" + top.name], "i-0123456789abcdef0"):
        assert str(top) not in api.gc().cache_removed and top.exists()
    result = api.gc()
    assert str(top) in result.cache_removed and not top.exists()
    assert api.layer_dirs(base_ami)[0].exists()


def test_concurrent_first_unpack(base_ami: str) -> None:
    import threading

    cache = region_dir().parent.parent / "cache" / "layers"
    shutil.rmtree(cache)
    results: list[Path] = []
    errors: list[BaseException] = []

    def unpack() -> None:
        try:
            results.extend(api.layer_dirs(base_ami))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=unpack) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(results)) == 1
    assert [p.name for p in cache.iterdir()] == [results[0].name]  # no temp dirs left


def test_gc_removes_half_done_layer_dirs_after_the_grace_period(base_ami: str) -> None:
    from kiln.store.unpack import layer_cache_root

    leftover = layer_cache_root() / ".tmp-0123456789ab-adopted-deadbeef"
    (leftover / "etc").mkdir(parents=True)  # as a process killed while adopting or unpacking leaves it
    assert str(leftover) not in api.gc().cache_removed and leftover.exists()
    assert str(leftover) in api.gc(grace_seconds=-60).cache_removed and not leftover.exists()
    assert api.layer_dirs(base_ami)[0].exists()
