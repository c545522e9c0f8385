"""``kiln image`` verbs of AMIs in the image store: import, bootstrap, list, describe, copy, deregister,
export, tag, untag, deprecate, disable, enable, protect, share, describe-attribute, reset-attribute, and
``kiln image block-public-access enable|disable|get`` (``kiln.services.ec2.images``). Each acts as the
account ``--account`` names."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, human_bytes, permissions_text, progress, table, to_json

app = typer.Typer()
block_public_access = typer.Typer(
    no_args_is_help=True, help="Image block public access of the account in a region: enable, disable, get."
)


def _minutes(ec2_time: str | None) -> str:
    """``2024-05-01T12:34:56.000Z`` as ``2024-05-01 12:34``."""
    return ec2_time[:16].replace("T", " ") if ec2_time else ""


def _images_table(images: list[dict[str, Any]]) -> None:
    table(
        ["ImageId", "Name", "Owner", "State", "Arch", "Root", "Created", "Deprecation", "Public"],
        [
            (
                i["ImageId"],
                i["Name"],
                i.get("ImageOwnerAlias") or i["OwnerId"],
                i["State"],
                i["Architecture"],
                i["RootDeviceType"],
                _minutes(i["CreationDate"]),
                _minutes(i.get("DeprecationTime")),
                i["Public"],
            )
            for i in images
        ],
    )


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
    allow_devices: bool = typer.Option(False, "--allow-devices", help="Accept device nodes in the tarball."),
    compression: str = typer.Option("zstd", "--compression", help="Layer compression: zstd or gzip."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Import a parent image; prints the new AMI id."""
    from kiln.cli.resource_input import key_values
    from kiln.services.ec2 import images

    tags = key_values(tag, "--tag")
    progress(f"importing {source} ...")
    result = images.import_image(
        source,
        name=name,
        region=region,
        architecture=architecture,
        description=description,
        tags=tags,
        root_device_type=root_device_type,
        allow_devices=allow_devices,
        compression=compression,
        account=account,
    )
    emit(output, result, result["ImageId"])


@app.command("bootstrap")
def bootstrap(
    source: str = typer.Argument(..., help="debian:<suite> or ubuntu:<suite>, e.g. debian:bookworm."),
    name: str = typer.Option(None, "--name"),
    include: str = typer.Option("", "--include", help="Extra packages, comma separated."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Build a minbase parent image with mmdebstrap (cached) and import it; prints the AMI id."""
    from kiln.services.ec2 import images

    progress(f"bootstrapping {source} (mmdebstrap minbase, cached) ...")
    result = images.bootstrap_image(
        source, name=name, region=region, include=[p for p in include.split(",") if p], account=account
    )
    emit(output, result, result["ImageId"])


@app.command("list")
def list_(
    name: str = typer.Option(None, "--name", help="Name filter, * and ? wildcards."),
    filter_: list[str] = typer.Option([], "--filter", help="NAME=V1,V2 (EC2 DescribeImages filters)."),
    image_id: list[str] = typer.Option([], "--image-id", help="Only these AMIs, repeatable."),
    owner: list[str] = typer.Option(
        [], "--owner", help="self, an account id, amazon, aws-marketplace or aws-backup-vault; repeatable."
    ),
    executable_by: list[str] = typer.Option(
        [], "--executable-by", help="self, an account id (explicit grants) or all (public); repeatable."
    ),
    include_deprecated: bool = typer.Option(False, "--include-deprecated"),
    include_disabled: bool = typer.Option(False, "--include-disabled"),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """List the AMIs the account may see: its own, public ones, those shared with it (EC2 DescribeImages)."""
    from kiln.cli.resource_input import filters
    from kiln.services.ec2 import images

    result = images.describe_images(
        region=region,
        image_ids=image_id or None,
        names=[name] if name else None,
        owners=owner or None,
        executable_users=executable_by or None,
        filters=filters(filter_),
        include_deprecated=include_deprecated,
        include_disabled=include_disabled,
        account=account,
    )
    emit(output, result, lambda: _images_table(result["Images"]))


@app.command("describe")
def describe(ami_id: str, region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """Show one AMI (EC2 Image fields)."""
    from kiln.services.ec2 import images

    image = images.describe_image(ami_id, region, account=account)
    emit(output, image, to_json(image))


def _deregister_text(result: dict[str, Any]) -> str:
    dry_run = result["DryRun"]
    deleted = [r["SnapshotId"] for r in result["DeleteSnapshotResults"] if r["ReturnCode"] == "success"]
    kept = [s for s in result["SnapshotIds"] if s not in deleted]
    lines = [f"{'would deregister' if dry_run else 'deregistered'} {result['ImageId']}"]
    if deleted:
        freed = result["FreedBytes"]
        lines.append(
            f"{'would delete' if dry_run else 'deleted'} snapshots {', '.join(deleted)}"
            f", freeing {human_bytes(freed)} ({freed} bytes)"
        )
    if kept:
        held = result["SnapshotBytes"]
        lines.append(
            f"snapshots {', '.join(kept)} are kept and still hold {human_bytes(held)} ({held} bytes); "
            "delete them with `kiln snapshot delete` or deregister with --delete-snapshots"
        )
    return "\n".join(lines)


@app.command("deregister")
def deregister(
    ami_id: str,
    delete_snapshots: bool = typer.Option(
        False, "--delete-snapshots", help="Also delete the AMI's snapshots (EC2 DeleteAssociatedSnapshots)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would happen; change nothing."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Deregister an AMI. Its snapshots stay (and keep their bytes) unless --delete-snapshots."""
    from kiln.services.ec2 import images

    result = images.deregister_image(
        ami_id, region=region, delete_snapshots=delete_snapshots, dry_run=dry_run, account=account
    )
    emit(output, result, _deregister_text(result))


@app.command("export")
def export(
    ami_id: str,
    fmt: str = typer.Option(
        "tar", "--format", help="tar, oci-archive, oci (a layout directory), raw, qcow2, vmdk, vhd or rootfs-ext4."
    ),
    dest: Path = typer.Option(..., "-o", "--output-file", help="File to write (a new directory for oci)."),
    volume_size: int = typer.Option(None, "--volume-size", help="A bootable disk's size in GiB (default 8)."),
    boot_mode: str = typer.Option(
        None, "--boot-mode", help="legacy-bios, uefi or uefi-preferred (default: what the image was built for)."
    ),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Export an AMI as a flattened tar, an OCI archive or layout directory (with its SBOMs as referrers),
    a disk image (bootable when the image has a kernel) or its bare root file system (rootfs-ext4)."""
    from kiln.services.ec2 import images

    progress(f"exporting {ami_id} as {fmt} ...")
    result = images.export_image(ami_id, fmt, dest, region, account=account, volume_size=volume_size,
                                 boot_mode=boot_mode)
    if result.get("Note"):
        progress(f"note: {result['Note']}")
    elif result.get("Bootable"):
        progress(f"bootable disk: {result['BootMode']}, {result['VirtualSize'] >> 30} GiB")
    emit(output, result, result["Path"])


@app.command("tag")
def tag(
    resource_id: str,
    tags: list[str] = typer.Argument(..., help="KEY=VALUE ..."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Add or overwrite tags on an AMI or snapshot (EC2 CreateTags)."""
    from kiln.cli.resource_input import key_values
    from kiln.services.ec2 import images

    result = images.create_tags(resource_id, key_values(tags, "TAGS"), account=account, region=region)
    emit(output, result, f"tagged {resource_id}")


@app.command("untag")
def untag(
    resource_id: str,
    keys: list[str] = typer.Argument(...),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Remove tags from an AMI or snapshot (EC2 DeleteTags)."""
    from kiln.services.ec2 import images

    result = images.delete_tags(resource_id, keys, account=account, region=region)
    emit(output, result, f"untagged {resource_id}")


@app.command("deprecate")
def deprecate(
    ami_id: str,
    at: datetime = typer.Option(None, "--at", help="Deprecation time (ISO 8601, UTC)."),
    in_days: int = typer.Option(None, "--in-days", help="Deprecate this many days from now."),
    cancel: bool = typer.Option(False, "--cancel", help="Remove the deprecation time."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Set or cancel an AMI's deprecation time (EC2 Enable/DisableImageDeprecation)."""
    from datetime import UTC, timedelta

    from kiln.services.ec2 import images

    if cancel:
        result = images.disable_image_deprecation(ami_id, region, account=account)
        emit(output, result, f"{ami_id}: deprecation cancelled")
        return
    when = at if at is not None else datetime.now(UTC) + timedelta(days=in_days or 0)
    result = images.enable_image_deprecation(ami_id, when, region, account=account)
    emit(output, result, f"{ami_id}: deprecated at {result['DeprecationTime']}")


@app.command("disable")
def disable(ami_id: str, region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """Disable an AMI: not launchable, not shared (EC2 DisableImage)."""
    from kiln.services.ec2 import images

    emit(output, images.disable_image(ami_id, region, account=account), f"{ami_id}: disabled")


@app.command("enable")
def enable(ami_id: str, region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """Re-enable a disabled AMI (EC2 EnableImage); the sharing it lost is not restored."""
    from kiln.services.ec2 import images

    emit(output, images.enable_image(ami_id, region, account=account), f"{ami_id}: available")


@app.command("protect")
def protect(
    ami_id: str,
    disable: bool = typer.Option(False, "--disable", help="Disable deregistration protection."),
    with_cooldown: bool = typer.Option(
        False, "--with-cooldown", help="Keep deregistration blocked 24 h after protection is disabled."
    ),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Enable or disable deregistration protection."""
    from kiln.services.ec2 import images

    if disable:
        result = images.disable_deregistration_protection(ami_id, region, account=account)
    else:
        result = images.enable_deregistration_protection(
            ami_id, with_cooldown=with_cooldown, region=region, account=account
        )
    emit(output, result, f"{ami_id}: {result['DeregistrationProtection']}")


@app.command("share")
def share(
    ami_id: str,
    add: list[str] = typer.Option(
        [], "--add", help="KIND=VALUE: UserId, Group (all), OrganizationArn, OrganizationalUnitArn."
    ),
    remove: list[str] = typer.Option([], "--remove", help="KIND=VALUE to remove."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Modify launch permissions (EC2 ModifyImageAttribute launchPermission); owner only. An OU grant
    covers the OUs below it; Group=all is refused while image block public access is on."""
    from kiln.cli.resource_input import launch_permissions
    from kiln.services.ec2 import images

    result = images.modify_launch_permission(
        ami_id,
        add=launch_permissions(add, "--add"),
        remove=launch_permissions(remove, "--remove"),
        region=region,
        account=account,
    )
    emit(output, result, permissions_text(result["LaunchPermissions"]))


@app.command("copy")
def copy(
    source_image_id: str = typer.Argument(..., help="AMI to copy."),
    source_region: str = typer.Option(DEFAULT_REGION, "--source-region", help="Region the AMI is in."),
    name: str = typer.Option(None, "--name", help="Name of the copy (default: the source's)."),
    description: str = typer.Option(None, "--description"),
    tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE tag of the copy, repeatable."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Copy an AMI into --region as a new AMI of the account (EC2 CopyImage); prints its id. Another
    account's AMI must be shared with it, and its snapshot too (kiln snapshot share)."""
    from kiln.cli.resource_input import key_values
    from kiln.services.ec2 import images

    progress(f"copying {source_image_id} from {source_region} to {region} ...")
    result = images.copy_image(
        source_image_id,
        source_region=source_region,
        region=region,
        name=name,
        description=description,
        tags=key_values(tag, "--tag"),
        account=account,
    )
    emit(output, result, result["ImageId"])


@app.command("describe-attribute")
def describe_attribute(
    ami_id: str,
    attribute: str = typer.Option(
        "launchPermission", "--attribute", help="launchPermission, description, lastLaunchedTime, ... (owner only)."
    ),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """One attribute of an AMI (EC2 DescribeImageAttribute)."""
    from kiln.services.ec2 import images

    result = images.describe_image_attribute(ami_id, attribute, region, account=account)
    if "LaunchPermissions" in result:
        emit(output, result, permissions_text(result["LaunchPermissions"]))
    else:
        emit(output, result, to_json(result))


@app.command("reset-attribute")
def reset_attribute(
    ami_id: str,
    attribute: str = typer.Option("launchPermission", "--attribute", help="Only launchPermission."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Drop every launch permission of an AMI (EC2 ResetImageAttribute)."""
    from kiln.services.ec2 import images

    emit(output, images.reset_image_attribute(ami_id, attribute, region, account=account), f"{ami_id}: (private)")


def _block_public_access_text(result: dict[str, Any], region: str, account: str) -> str:
    return f"{result['ImageBlockPublicAccessState']} (account {account}, region {region})"


@block_public_access.command("enable")
def block_public_access_enable(
    region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text"
) -> None:
    """Refuse new public sharing of the account's AMIs in the region (public ones stay public)."""
    from kiln.services.ec2 import images

    result = images.enable_image_block_public_access(region=region, account=account)
    emit(output, result, _block_public_access_text(result, region, account))


@block_public_access.command("disable")
def block_public_access_disable(
    region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text"
) -> None:
    """Allow public sharing again."""
    from kiln.services.ec2 import images

    result = images.disable_image_block_public_access(region=region, account=account)
    emit(output, result, _block_public_access_text(result, region, account))


@block_public_access.command("get")
def block_public_access_get(
    region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text"
) -> None:
    """Show the state (unblocked or block-new-sharing)."""
    from kiln.services.ec2 import images

    result = images.get_image_block_public_access_state(region=region, account=account)
    emit(output, result, _block_public_access_text(result, region, account))
