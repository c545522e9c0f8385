"""Orphaned snapshots (their AMIs deregistered) are listed and deleted in one batch, bytes exact."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kiln.store import api


def _child(base_ami: str, tmp_path: Path) -> str:
    upper = tmp_path / "upper"
    (upper / "opt").mkdir(parents=True)
    (upper / "opt" / "payload").write_bytes(os.urandom(200_000))
    return api.create_image_from_upper(base_ami, upper, name="child")


def test_orphans_sharing_blobs_free_their_shared_layer_together(base_ami: str, tmp_path: Path, blob_files) -> None:
    child = _child(base_ami, tmp_path)
    api.deregister_image(child)
    api.deregister_image(base_ami)
    orphans = api.list_snapshots(orphaned=True)
    assert len(orphans) == 2
    # Each alone frees only what no other snapshot holds; together they also free the shared base layer.
    alone = sum(snap.unique_bytes for snap in orphans)
    before = blob_files()
    listed, total = api.delete_orphaned_snapshots(dry_run=True)
    assert total > alone
    assert blob_files() == before and len(api.list_snapshots(orphaned=True)) == 2
    deleted, freed = api.delete_orphaned_snapshots()
    assert (deleted, freed) == (listed, total)
    after = blob_files()
    assert sum(before.values()) - sum(after.values()) == total
    assert api.list_snapshots(orphaned=True) == []


def test_older_than_keeps_recent_orphans_and_the_cli_previews(kiln, base_ami: str, tmp_path: Path) -> None:
    child = _child(base_ami, tmp_path)
    api.deregister_image(child)
    command = ["snapshot", "delete", "--orphaned"]
    recent = kiln(*command, "--older-than", "30d", "--output", "json")
    assert recent.exit_code == 0, recent.stderr
    assert json.loads(recent.stdout)["Snapshots"] == []
    preview = kiln(*command, "--dry-run")
    assert preview.exit_code == 0 and "would delete 1 orphaned snapshot(s)" in preview.stdout
    assert len(api.list_snapshots(orphaned=True)) == 1
    bad = kiln(*command, "--older-than", "soon")
    assert bad.exit_code != 0 and "--older-than" in bad.stderr
