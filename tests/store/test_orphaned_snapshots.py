"""Orphaned snapshots (their AMIs deregistered) are listed and deleted in one batch, bytes exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def test_older_than_keeps_recent_orphans_and_the_cli_previews(base_ami: str, tmp_path: Path, kiln_home: Path) -> None:
    child = _child(base_ami, tmp_path)
    api.deregister_image(child)
    kiln = [sys.executable, "-m", "kiln", "snapshot", "delete", "--orphaned"]
    env = {**os.environ, "KILN_HOME": str(kiln_home)}
    recent = subprocess.run([*kiln, "--older-than", "30d", "--output", "json"], env=env, capture_output=True, text=True)
    assert recent.returncode == 0, recent.stderr
    assert json.loads(recent.stdout)["Snapshots"] == []
    preview = subprocess.run([*kiln, "--dry-run"], env=env, capture_output=True, text=True)
    assert preview.returncode == 0 and "would delete 1 orphaned snapshot(s)" in preview.stdout
    assert len(api.list_snapshots(orphaned=True)) == 1
    bad = subprocess.run([*kiln, "--older-than", "soon"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "--older-than" in bad.stderr
