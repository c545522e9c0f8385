"""``kiln image`` verbs of the image store: import, bootstrap, list, describe, deregister, export,
tag, untag, deprecate, disable, enable, protect, share."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import typer

from kiln.cli.output import OutputFormat, emit, human_bytes, progress, table
from kiln.errors import InvalidInput

Region = typer.Option("local", "--region", help="Region (image store) to use.")


def _tags(pairs: list[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput("tags are KEY=VALUE", location=pair)
        tags[key] = value
    return tags


def _render_images(images: list) -> None:  # type: ignore[type-arg]
    table(
        ["ImageId", "Name", "State", "Arch", "Root", "Created", "Deprecation", "Public"],
        [
            (
                i.id,
                i.name,
                i.state,
                i.architecture,
                i.root_device_type,
                i.creation_date.strftime("%Y-%m-%d %H:%M"),
                i.deprecation_time.strftime("%Y-%m-%d %H:%M") if i.deprecation_time else "",
                i.public,
            )
            for i in images
        ],
    )


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_(
        source: Path = typer.Argument(
            ..., help="Rootfs tarball (tar, tar.gz, tar.zst), directory, OCI layout or oci-archive."
        ),
        name: str = typer.Option(..., "--name", help="AMI name (unique per region among registered AMIs)."),
        architecture: str = typer.Option(None, "--architecture", help="x86_64, arm64, i386 (default: host)."),
        description: str = typer.Option("", "--description"),
        tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE, repeatable."),
        root_device_type: str = typer.Option("ebs", "--root-device-type", help="ebs or instance-store."),
        allow_devices: bool = typer.Option(
            False, "--allow-devices", help="Accept device nodes in the tarball."
        ),
        compression: str = typer.Option("zstd", "--compression", help="Layer compression: zstd or gzip."),
        region: str = Region,
        output: OutputFormat = "text",
    ) -> None:
        """Import a parent image; prints the new AMI id."""
        from kiln.store import api

        progress(f"importing {source} ...")
        ami = api.import_rootfs(
            source,
            name=name,
            region=region,
            architecture=architecture,
            description=description,
            tags=_tags(tag),
            root_device_type=root_device_type,
            allow_devices=allow_devices,
            compression=compression,
        )
        emit(output, {"ImageId": ami}, ami)

    @app.command("bootstrap")
    def bootstrap(
        source: str = typer.Argument(..., help="debian:<suite> or ubuntu:<suite>, e.g. debian:bookworm."),
        name: str = typer.Option(None, "--name"),
        include: str = typer.Option("", "--include", help="Extra packages, comma separated."),
        region: str = Region,
        output: OutputFormat = "text",
    ) -> None:
        """Build a minbase parent image with mmdebstrap (cached) and import it; prints the AMI id."""
        from kiln.store import api

        progress(f"bootstrapping {source} (mmdebstrap minbase, cached) ...")
        pkgs = [p for p in include.split(",") if p]
        ami = api.bootstrap_image(source, name=name, region=region, include=pkgs)
        emit(output, {"ImageId": ami}, ami)

    @app.command("list")
    def list_(
        name: str = typer.Option(None, "--name", help="Name filter, * and ? wildcards."),
        filter_: list[str] = typer.Option([], "--filter", help="NAME=V1,V2 (EC2 DescribeImages filters)."),
        include_deprecated: bool = typer.Option(False, "--include-deprecated"),
        include_disabled: bool = typer.Option(False, "--include-disabled"),
        region: str = Region,
        output: OutputFormat = "text",
    ) -> None:
        """List registered AMIs (EC2 DescribeImages semantics)."""
        from kiln.store import api

        filters: dict[str, list[str]] = {}
        for item in filter_:
            key, sep, values = item.partition("=")
            if not sep:
                raise InvalidInput("filters are NAME=V1,V2", location=item)
            filters.setdefault(key, []).extend(values.split(","))
        images = api.describe_images(
            region,
            names=[name] if name else None,
            filters=filters,
            include_deprecated=include_deprecated,
            include_disabled=include_disabled,
        )
        emit(output, {"Images": [i.to_ec2() for i in images]}, lambda: _render_images(images))

    @app.command("describe")
    def describe(ami_id: str, region: str = Region, output: OutputFormat = "text") -> None:
        """Show one AMI (EC2 Image fields)."""
        from kiln.cli.output import to_json
        from kiln.store import api

        image = api.get_image(ami_id, region)
        emit(output, image.to_ec2(), to_json(image.to_ec2()))

    @app.command("deregister")
    def deregister(
        ami_id: str,
        delete_snapshots: bool = typer.Option(
            False,
            "--delete-snapshots",
            help="Also delete the AMI's snapshots (EC2 DeleteAssociatedSnapshots).",
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show what would happen; change nothing."),
        region: str = Region,
        output: OutputFormat = "text",
    ) -> None:
        """Deregister an AMI. Its snapshots stay (and keep their bytes) unless --delete-snapshots."""
        from kiln.store import api

        r = api.deregister_image(ami_id, region=region, delete_snapshots=delete_snapshots, dry_run=dry_run)
        verb = "would deregister" if dry_run else "deregistered"
        lines = [f"{verb} {ami_id}"]
        kept = [s for s in r.snapshot_ids if s not in r.deleted_snapshots]
        if r.deleted_snapshots:
            lines.append(
                f"{'would delete' if dry_run else 'deleted'} snapshots {', '.join(r.deleted_snapshots)}"
                f", freeing {human_bytes(r.freed_bytes)} ({r.freed_bytes} bytes)"
            )
        if kept:
            lines.append(
                f"snapshots {', '.join(kept)} are kept and still hold {human_bytes(r.snapshot_bytes)} "
                f"({r.snapshot_bytes} bytes); delete them with `kiln snapshot delete` "
                "or deregister with --delete-snapshots"
            )
        data = {
            "ImageId": ami_id,
            "Return": True,
            "DryRun": dry_run,
            "SnapshotIds": r.snapshot_ids,
            "SnapshotBytes": r.snapshot_bytes,
            "FreedBytes": r.freed_bytes,
            "DeleteSnapshotResults": [
                {"SnapshotId": s, "ReturnCode": "success" if s in r.deleted_snapshots else "skipped"}
                for s in r.snapshot_ids
            ]
            if delete_snapshots
            else [],
        }
        emit(output, data, "\n".join(lines))

    @app.command("export")
    def export(
        ami_id: str,
        fmt: str = typer.Option("tar", "--format", help="tar, oci-archive, raw, qcow2, vmdk or vhd."),
        dest: Path = typer.Option(..., "-o", "--output-file", help="File to write."),
        region: str = Region,
        output: OutputFormat = "text",
    ) -> None:
        """Export an AMI as a flattened tar, an OCI archive or a disk image."""
        from kiln.store import api

        progress(f"exporting {ami_id} as {fmt} ...")
        path = api.export_image(ami_id, fmt, dest, region)
        emit(
            output,
            {"ImageId": ami_id, "Format": fmt, "Path": str(path), "Size": path.stat().st_size},
            str(path),
        )

    @app.command("tag")
    def tag(
        resource_id: str,
        tags: list[str] = typer.Argument(..., help="KEY=VALUE ..."),
        output: OutputFormat = "text",
    ) -> None:
        """Add or overwrite tags on an AMI or snapshot (EC2 CreateTags)."""
        from kiln.store import api

        api.create_tags(resource_id, _tags(tags))
        emit(output, {"ResourceId": resource_id, "Tags": _tags(tags)}, f"tagged {resource_id}")

    @app.command("untag")
    def untag(resource_id: str, keys: list[str] = typer.Argument(...), output: OutputFormat = "text") -> None:
        """Remove tags from an AMI or snapshot (EC2 DeleteTags)."""
        from kiln.store import api

        api.delete_tags(resource_id, keys)
        emit(output, {"ResourceId": resource_id, "Keys": keys}, f"untagged {resource_id}")

    @app.command("deprecate")
    def deprecate(
        ami_id: str,
        at: datetime = typer.Option(None, "--at", help="Deprecation time (ISO 8601, UTC)."),
        in_days: int = typer.Option(None, "--in-days", help="Deprecate this many days from now."),
        cancel: bool = typer.Option(False, "--cancel", help="Remove the deprecation time."),
        region: str = Region,
        output: OutputFormat = "text",
    ) -> None:
        """Set or cancel an AMI's deprecation time (EC2 Enable/DisableImageDeprecation)."""
        from kiln.db.base import utcnow
        from kiln.store import api

        if cancel:
            api.disable_image_deprecation(ami_id, region)
            emit(output, {"ImageId": ami_id, "DeprecationTime": None}, f"{ami_id}: deprecation cancelled")
            return
        when = at if at is not None else utcnow() + timedelta(days=in_days or 0)
        api.enable_image_deprecation(ami_id, when, region)
        when_s = api.get_image(ami_id, region).to_ec2().get("DeprecationTime")
        emit(output, {"ImageId": ami_id, "DeprecationTime": when_s}, f"{ami_id}: deprecated at {when_s}")

    @app.command("disable")
    def disable(ami_id: str, region: str = Region, output: OutputFormat = "text") -> None:
        """Disable an AMI: not launchable, not shared (EC2 DisableImage)."""
        from kiln.store import api

        api.disable_image(ami_id, region)
        emit(output, {"ImageId": ami_id, "State": "disabled"}, f"{ami_id}: disabled")

    @app.command("enable")
    def enable(ami_id: str, region: str = Region, output: OutputFormat = "text") -> None:
        """Re-enable a disabled AMI (EC2 EnableImage)."""
        from kiln.store import api

        api.enable_image(ami_id, region)
        emit(output, {"ImageId": ami_id, "State": "available"}, f"{ami_id}: available")

    @app.command("protect")
    def protect(
        ami_id: str,
        disable: bool = typer.Option(False, "--disable", help="Disable deregistration protection."),
        with_cooldown: bool = typer.Option(
            False, "--with-cooldown", help="Keep deregistration blocked 24 h after protection is disabled."
        ),
        region: str = Region,
        output: OutputFormat = "text",
    ) -> None:
        """Enable or disable deregistration protection."""
        from kiln.store import api

        if disable:
            state = api.disable_deregistration_protection(ami_id, region)
        else:
            state = api.enable_deregistration_protection(ami_id, with_cooldown, region)
        emit(output, {"ImageId": ami_id, "DeregistrationProtection": state}, f"{ami_id}: {state}")

    @app.command("share")
    def share(
        ami_id: str,
        add: list[str] = typer.Option(
            [], "--add", help="KIND=VALUE: UserId, Group (all), OrganizationArn, OrganizationalUnitArn."
        ),
        remove: list[str] = typer.Option([], "--remove", help="KIND=VALUE to remove."),
        region: str = Region,
        output: OutputFormat = "text",
    ) -> None:
        """Modify launch permissions (EC2 ModifyImageAttribute launchPermission)."""
        from kiln.store import api

        def parse(items: list[str]) -> list[dict[str, str]]:
            entries = []
            for item in items:
                kind, sep, value = item.partition("=")
                if not sep:
                    raise InvalidInput("launch permissions are KIND=VALUE, e.g. Group=all", location=item)
                entries.append({kind: value})
            return entries

        perms = api.modify_launch_permission(ami_id, add=parse(add), remove=parse(remove), region=region)
        emit(
            output,
            {"ImageId": ami_id, "LaunchPermissions": perms},
            "\n".join(f"{k}={v}" for p in perms for k, v in p.items()) or "(private)",
        )
