"""``kiln store fsck|gc``: verify the image store, collect unreferenced blobs (``kiln.services.storage``)."""

from __future__ import annotations

import typer

from kiln.cli.options import DEFAULT_REGION, Output, Region
from kiln.cli.output import emit, human_bytes

app = typer.Typer()


@app.command("fsck")
def fsck(region: Region = DEFAULT_REGION, output: Output = "text") -> None:
    """Re-hash every blob, check every reference; quarantine corrupt blobs. Exit 1 if not clean."""
    from kiln.services import storage

    report = storage.fsck(region)
    lines = [f"checked {report['blobs_checked']} blobs in region {region}"]
    lines += [f"corrupt (quarantined): {d}" for d in report["corrupt"]]
    lines += [f"problem: {p}" for p in report["problems"]]
    lines += [f"repaired: {r}" for r in report["repaired"]]
    lines.append("clean" if report["ok"] else "NOT clean")
    emit(output, report, "\n".join(lines))
    if not report["ok"]:
        raise typer.Exit(1)


@app.command("gc")
def gc(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would go; delete nothing."),
    grace: float = typer.Option(3600, "--grace-seconds", help="Keep unreferenced blobs younger than this."),
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """Delete blobs no snapshot or AMI references (pins and a grace period protect in-flight builds)."""
    from kiln.services import storage

    result = storage.gc(region, dry_run=dry_run, grace_seconds=grace)
    verb = "would delete" if dry_run else "deleted"
    deleted = result["Deleted"]
    lines = [f"{verb} {d['Digest']} ({human_bytes(d['Size'])})" for d in deleted]
    lines.append(
        f"{verb} {len(deleted)} blobs, freeing {human_bytes(result['FreedBytes'])} "
        f"({result['FreedBytes']} bytes); kept {len(result['KeptInGrace'])} in grace period, "
        f"{len(result['KeptPinned'])} pinned"
    )
    emit(output, result, "\n".join(lines))
