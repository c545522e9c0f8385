"""The image store's upkeep for every front end: verify it (fsck), collect unreferenced blobs (gc)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from kiln.home import DEFAULT_REGION
from kiln.store import api

DEFAULT_GRACE_SECONDS = 3600.0


def fsck(region: str = DEFAULT_REGION) -> dict[str, Any]:
    """Re-hash every blob and check every reference; corrupt blobs are quarantined."""
    report = api.fsck(region)
    return {**asdict(report), "ok": report.ok}


def gc(
    region: str = DEFAULT_REGION, *, dry_run: bool = False, grace_seconds: float = DEFAULT_GRACE_SECONDS
) -> dict[str, Any]:
    """Delete blobs no snapshot or AMI references; pins and the grace period protect in-flight work."""
    result = api.gc(region, dry_run=dry_run, grace_seconds=grace_seconds)
    return {
        "DryRun": dry_run,
        "Deleted": [{"Digest": digest, "Size": size} for digest, size in result.deleted],
        "FreedBytes": result.freed_bytes,
        "KeptInGrace": result.kept_in_grace,
        "KeptPinned": result.kept_pinned,
        "TmpRemoved": result.tmp_removed,
        "CacheRemoved": result.cache_removed,
    }
