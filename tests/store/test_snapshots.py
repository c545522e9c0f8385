"""Incremental snapshots, unique-bytes accounting, deregistration leaving snapshots, InUse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiln.errors import InUse
from kiln.home import region_dir
from kiln.store import api


def _child(base: str, tmp_path: Path, name: str, size: int = 50_000) -> str:
    upper = tmp_path / f"upper-{name}"
    (upper / "opt").mkdir(parents=True)
    (upper / "opt" / f"{name}.bin").write_bytes(os.urandom(size))
    return api.create_image_from_upper(base, upper, name=name)


def test_child_reuses_parent_blobs(tmp_path: Path, base_ami: str, blob_files) -> None:
    child = _child(base_ami, tmp_path, "child")
    snaps = {s.image_ids[0]: s for s in api.list_snapshots()}
    base_snap, child_snap = snaps[base_ami], snaps[child]
    assert child_snap.layers[:1] == base_snap.layers and len(child_snap.layers) == 2
    assert child_snap.parent_id == base_snap.id
    files = blob_files()
    assert child_snap.unique_bytes == files[child_snap.layers[1]]
    assert base_snap.unique_bytes == 0  # its only layer is shared with the child
    assert child_snap.size == files[child_snap.layers[0]] + files[child_snap.layers[1]]


def test_deregister_leaves_snapshot_then_delete_frees_exactly_its_blobs(
    tmp_path: Path, base_ami: str, blob_files
) -> None:
    child = _child(base_ami, tmp_path, "child")
    snap_id = api.get_image(child).snapshot_ids[0]
    before = blob_files()
    result = api.deregister_image(child)
    assert result.snapshot_ids == [snap_id] and result.deleted_snapshots == []
    own_layer = api.get_snapshot(snap_id).layers[1]
    assert result.snapshot_bytes == before[own_layer]
    assert own_layer in blob_files()  # the trap: the bytes are still there
    assert snap_id in [s.id for s in api.list_snapshots(orphaned=True)]
    assert api.delete_snapshot(snap_id, dry_run=True) == before[own_layer]
    assert own_layer in blob_files()
    freed = api.delete_snapshot(snap_id)
    after = blob_files()
    assert freed == before[own_layer] and own_layer not in after
    assert api.get_snapshot(api.get_image(base_ami).snapshot_ids[0]).layers[0] in after
    assert api.layer_dirs(base_ami)


def test_deregister_with_delete_snapshots(tmp_path: Path, base_ami: str, blob_files) -> None:
    child = _child(base_ami, tmp_path, "child")
    snap_id = api.get_image(child).snapshot_ids[0]
    own_layer = api.get_snapshot(snap_id).layers[1]
    before = blob_files()
    preview = api.deregister_image(child, delete_snapshots=True, dry_run=True)
    assert preview.freed_bytes == before[own_layer] and blob_files() == before
    assert api.get_image(child).state == "available"
    result = api.deregister_image(child, delete_snapshots=True)
    assert result.deleted_snapshots == [snap_id]
    assert result.freed_bytes == before[own_layer]
    after = blob_files()
    assert own_layer not in after
    assert snap_id not in [s.id for s in api.list_snapshots()]
    ref_names = (region_dir() / "index.json").read_text()
    assert child not in ref_names and base_ami in ref_names


def test_delete_snapshot_in_use_refused(base_ami: str) -> None:
    snap_id = api.get_image(base_ami).snapshot_ids[0]
    with pytest.raises(InUse, match=r"InvalidSnapshot\.InUse"):
        api.delete_snapshot(snap_id)
    assert snap_id in [s.id for s in api.list_snapshots()]
    assert api.list_snapshots(orphaned=True) == []


def test_identical_imports_share_blobs_and_deleting_one_frees_nothing(busybox_dir: Path, blob_files) -> None:
    first = api.import_rootfs(busybox_dir, name="twin-a")
    second = api.import_rootfs(busybox_dir, name="twin-b")
    layer_a, layer_b = api.image_layers(first)[0].digest, api.image_layers(second)[0].digest
    assert layer_a == layer_b  # reproducible capture: same tree, same blob
    assert all(s.unique_bytes == 0 for s in api.list_snapshots())
    result = api.deregister_image(first, delete_snapshots=True)
    assert result.freed_bytes == 0 and layer_a in blob_files()
    assert api.list_snapshots()[0].unique_bytes == blob_files()[layer_a]
    assert (api.layer_dirs(second)[0] / "bin" / "busybox").exists()
