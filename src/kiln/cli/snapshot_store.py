"""``kiln snapshot list|delete``: the layers behind root volumes, and the bytes they hold."""

from __future__ import annotations

from datetime import timedelta

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
        snapshot_id: str = typer.Argument(None, help="Snapshot id (or --orphaned for every orphan)."),
        orphaned: bool = typer.Option(False, "--orphaned", help="Delete every snapshot no registered AMI uses."),
        older_than: str = typer.Option(None, "--older-than", help="With --orphaned: only those older, e.g. 30d, 12h."),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Show the bytes it would free; change nothing."
        ),
        region: str = Region,
        output: OutputFormat = "text",
    ) -> None:
        """Delete a snapshot (refused while a registered AMI uses it), or every orphaned one."""
        from kiln.errors import InvalidInput
        from kiln.store import api

        verb = "would delete" if dry_run else "deleted"
        if orphaned == bool(snapshot_id):
            raise InvalidInput("give a snapshot id or --orphaned (not both)")
        if older_than and not orphaned:
            raise InvalidInput("--older-than goes with --orphaned", location="--older-than")
        if orphaned:
            deleted, total = api.delete_orphaned_snapshots(
                region=region, older_than=parse_age(older_than) if older_than else None, dry_run=dry_run
            )

            def text() -> None:
                for snap, size in deleted:
                    typer.echo(f"{verb} {snap}, freeing {human_bytes(size)} ({size} bytes)")
                typer.echo(f"{verb} {len(deleted)} orphaned snapshot(s), freeing {human_bytes(total)} ({total} bytes)")

            emit(output, {"Snapshots": [{"SnapshotId": s, "FreedBytes": b} for s, b in deleted],
                          "DryRun": dry_run, "FreedBytes": total}, text)
            return
        freed = api.delete_snapshot(snapshot_id, region=region, dry_run=dry_run)
        emit(
            output,
            {"SnapshotId": snapshot_id, "DryRun": dry_run, "FreedBytes": freed},
            f"{verb} {snapshot_id}, freeing {human_bytes(freed)} ({freed} bytes)",
        )


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``: an age for --older-than."""
    from kiln.errors import InvalidInput

    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not number.isdigit():
        raise InvalidInput(f"{text!r} is not an age", location="--older-than", hint="e.g. 30d, 12h, 90m, 2w")
    return timedelta(**{units[unit]: int(number)})
