"""``kiln store fsck|gc``: verify the image store, collect unreferenced blobs."""

from __future__ import annotations

import typer

from kiln.cli.output import OutputFormat, emit, human_bytes

Region = typer.Option("local", "--region", help="Region (image store) to use.")


def register(app: typer.Typer) -> None:
    @app.command("fsck")
    def fsck(region: str = Region, output: OutputFormat = "text") -> None:
        """Re-hash every blob, check every reference; quarantine corrupt blobs. Exit 1 if not clean."""
        from dataclasses import asdict

        from kiln.store import api

        report = api.fsck(region)
        lines = [f"checked {report.blobs_checked} blobs in region {region}"]
        lines += [f"corrupt (quarantined): {d}" for d in report.corrupt]
        lines += [f"problem: {p}" for p in report.problems]
        lines += [f"repaired: {r}" for r in report.repaired]
        lines.append("clean" if report.ok else "NOT clean")
        emit(output, {**asdict(report), "ok": report.ok}, "\n".join(lines))
        if not report.ok:
            raise typer.Exit(1)

    @app.command("gc")
    def gc(
        dry_run: bool = typer.Option(False, "--dry-run", help="Print what would go; delete nothing."),
        grace: float = typer.Option(
            3600, "--grace-seconds", help="Keep unreferenced blobs younger than this."
        ),
        region: str = Region,
        output: OutputFormat = "text",
    ) -> None:
        """Delete blobs no snapshot or AMI references (pins and a grace period protect in-flight builds)."""
        from kiln.store import api

        result = api.gc(region, dry_run=dry_run, grace_seconds=grace)
        verb = "would delete" if dry_run else "deleted"
        lines = [f"{verb} {d} ({human_bytes(s)})" for d, s in result.deleted]
        lines.append(
            f"{verb} {len(result.deleted)} blobs, freeing {human_bytes(result.freed_bytes)} "
            f"({result.freed_bytes} bytes); kept {len(result.kept_in_grace)} in grace period, "
            f"{len(result.kept_pinned)} pinned"
        )
        data = {
            "DryRun": dry_run,
            "Deleted": [{"Digest": d, "Size": s} for d, s in result.deleted],
            "FreedBytes": result.freed_bytes,
            "KeptInGrace": result.kept_in_grace,
            "KeptPinned": result.kept_pinned,
            "TmpRemoved": result.tmp_removed,
            "CacheRemoved": result.cache_removed,
        }
        emit(output, data, "\n".join(lines))
