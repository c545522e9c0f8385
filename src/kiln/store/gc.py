"""Blob garbage collection: reference counting, pins, and a grace period on blob mtime."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select

from kiln.db.engine import session
from kiln.db.tables.store import StoreImage, StoreLayer
from kiln.store.blobs import hex_of
from kiln.store.layout import Layout
from kiln.store.pins import pinned_digests
from kiln.store.referrers import detach_all, live_referrer_blobs, subjects_listed
from kiln.store.snapshots import referenced_digests
from kiln.store.unpack import layer_cache_root

DEFAULT_GRACE = 3600


@dataclass
class GcResult:
    region: str
    dry_run: bool
    deleted: list[tuple[str, int]] = field(default_factory=list)
    kept_in_grace: list[str] = field(default_factory=list)
    kept_pinned: list[str] = field(default_factory=list)
    tmp_removed: list[str] = field(default_factory=list)
    cache_removed: list[str] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return sum(size for _, size in self.deleted)


def _mounted_paths() -> str:
    try:
        return Path("/proc/self/mountinfo").read_text()
    except OSError:
        return ""


def live_manifests(layout: Layout, region: str) -> set[str]:
    """The manifests of registered AMIs (the database's, and index.json's refs)."""
    with session() as db:
        manifests = {
            row[0]
            for row in db.execute(
                select(StoreImage.manifest_digest).where(
                    StoreImage.region == region, StoreImage.state != "deregistered"
                )
            )
            if row[0]
        }
    return manifests | set(layout.refs().values())


def live_digests(layout: Layout, region: str) -> set[str]:
    """Blobs something references: snapshots' layers, registered AMIs' manifests and configs, and the
    artifacts (SBOMs) whose subject is a registered AMI's manifest."""
    with session() as db:
        live = referenced_digests(db, region)
    manifests = live_manifests(layout, region)
    live |= live_referrer_blobs(layout, manifests)
    for digest in manifests:
        live.add(digest)
        try:
            manifest = layout.read_json_blob(digest)
            live.add(manifest["config"]["digest"])
            live.update(layer["digest"] for layer in manifest["layers"])
        except Exception:  # a missing or corrupt manifest is fsck's business; keep what we can
            continue
    return live


def gc(region: str = "local", *, dry_run: bool = False, grace_seconds: float = DEFAULT_GRACE) -> GcResult:
    """Delete unreferenced, unpinned blobs older than the grace period (and stale temp files)."""
    layout = Layout.for_region(region)
    started = time.time()
    result = GcResult(region, dry_run)
    pins = pinned_digests(region)  # read before the scan: a writer pins before it writes
    if not dry_run:
        drop_stale_referrers(layout, region)
    live = live_digests(layout, region)
    cutoff = started - grace_seconds
    for digest in layout.blobs.all_digests():
        if digest in live:
            continue
        if digest in pins:
            result.kept_pinned.append(digest)
            continue
        path = layout.blobs.blob_dir / hex_of(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if st.st_mtime > cutoff:
            result.kept_in_grace.append(digest)
            continue
        result.deleted.append((digest, st.st_size))
    if not dry_run:
        for digest, _ in result.deleted:
            layout.blobs.delete(digest)
        with session() as db:
            for digest, _ in result.deleted:
                db.execute(delete(StoreLayer).where(StoreLayer.region == region, StoreLayer.digest == digest))
    result.tmp_removed = [str(p) for p in ([] if dry_run else layout.blobs.clear_tmp(cutoff))]
    result.cache_removed = _prune_cache(layout, dry_run, pins, cutoff)
    return result


def drop_stale_referrers(layout: Layout, region: str) -> list[str]:
    """Referrers left in index.json whose subject is no registered AMI's manifest (a deregistration
    interrupted between its commit and its index update): their entries go, their blobs become garbage."""
    manifests = live_manifests(layout, region)
    stale = [subject for subject in subjects_listed(layout) if subject not in manifests]
    for subject in stale:
        detach_all(layout, subject)
    return stale


def _prune_cache(layout: Layout, dry_run: bool, pins: set[str], cutoff: float) -> list[str]:
    """Unpacked layer dirs whose blob is gone, that no mount here uses and no one pinned (an instance
    in another mount namespace pins its layers); and dirs a killed unpack or adoption left half done
    (``.tmp-…``, untouched since before the grace period: a rename sets their ctime)."""
    mounts = _mounted_paths()
    removed = []
    root = layer_cache_root()
    for entry in root.iterdir():
        if entry.name.startswith(".tmp-") and entry.lstat().st_ctime < cutoff:
            removed.append(str(entry))
            if not dry_run:
                shutil.rmtree(entry, ignore_errors=True)
            continue
        if entry.name.startswith(".") or len(entry.name) != 64:
            continue
        if (layout.blobs.blob_dir / entry.name).exists() or str(entry) in mounts:
            continue
        if "sha256:" + entry.name in pins:
            continue
        # only this region's view: another region may hold the same blob
        if any((p / "blobs" / "sha256" / entry.name).exists() for p in layout.root.parent.iterdir()):
            continue
        removed.append(str(entry))
        if not dry_run:
            shutil.rmtree(entry, ignore_errors=True)
    return removed
