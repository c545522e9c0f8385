"""``kiln snapshot list|delete``: the layers behind root volumes, and the bytes they hold."""

from __future__ import annotations

import typer

from kiln.cli.output import OutputFormat, emit, human_bytes, table

Region = typer.Option("local", "--region", help="Region (image store) to use.")


def register(app: typer.Typer) -> None:
    @app.command("list")
    def list_(
        orphaned: bool = typer.Option(False, "--orphaned", help="Only snapshots no registered AMI uses."),
        region: str = Region,
        output: OutputFormat = "text",
    ) -> None:
        """List snapshots with their size and unique bytes (what deleting each frees)."""
        from kiln.store import api

        snaps = api.list_snapshots(region, orphaned=orphaned)
        emit(
            output,
            {"Snapshots": [s.to_ec2() for s in snaps]},
            lambda: table(
                ["SnapshotId", "Size", "Unique", "Layers", "Images", "Orphaned", "Created"],
                [
                    (
                        s.id,
                        human_bytes(s.size),
                        human_bytes(s.unique_bytes),
                        len(s.layers),
                        ",".join(s.image_ids),
                        "yes" if s.orphaned else "",
                        s.created.strftime("%Y-%m-%d %H:%M"),
                    )
                    for s in snaps
                ],
            ),
        )

    @app.command("delete")
    def delete(
        snapshot_id: str,
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Show the bytes it would free; change nothing."
        ),
        region: str = Region,
        output: OutputFormat = "text",
    ) -> None:
        """Delete a snapshot (refused while a registered AMI uses it)."""
        from kiln.store import api

        freed = api.delete_snapshot(snapshot_id, region=region, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        emit(
            output,
            {"SnapshotId": snapshot_id, "DryRun": dry_run, "FreedBytes": freed},
            f"{verb} {snapshot_id}, freeing {human_bytes(freed)} ({freed} bytes)",
        )
