"""The image store's public surface: what the runtime, services, CLI and API call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from kiln.db.engine import session
from kiln.errors import InvalidInput
from kiln.model.sharing import Principal
from kiln.store import images, referrers
from kiln.store.access import check_storage_readable, image_for, snapshot_for
from kiln.store.adopt import adopt
from kiln.store.boot_attributes import boot_attributes_of
from kiln.store.bootstrap import bootstrap_tarball, parse_source
from kiln.store.busybox import busybox_rootfs
from kiln.store.copying import BlobTransfer, transfer_blobs
from kiln.store.disk_image import DEFAULT_SIZE as DEFAULT_DISK_SIZE
from kiln.store.export import LAYOUT_FORMATS, DiskGeometry, Exported, export_layers, export_raw_disk
from kiln.store.export_flatten import flatten_dirs
from kiln.store.fidelity import CaptureRecord
from kiln.store.fsck import FsckReport
from kiln.store.fsck import fsck as _fsck
from kiln.store.gc import DEFAULT_GRACE, GcResult
from kiln.store.gc import gc as _gc
from kiln.store.image_ops import (
    DeregisterResult,
    assert_launchable,
    create_tags,
    create_volume_permissions,
    delete_tags,
    deregister_image,
    disable_deregistration_protection,
    disable_image,
    disable_image_deprecation,
    enable_deregistration_protection,
    enable_image,
    enable_image_deprecation,
    image_attributes,
    image_block_public_access,
    launchable_layers,
    modify_create_volume_permission,
    modify_launch_permission,
    reset_launch_permission,
    set_description,
    set_image_block_public_access,
    set_last_launched,
)
from kiln.store.images import ImageInfo, describe_images, get_image, kept_images
from kiln.store.importer import import_layers
from kiln.store.layers import LayerInfo, capture
from kiln.store.layout import EC2_ARCH, MANIFEST_TYPE, Descriptor, Layout
from kiln.store.limits import import_limit, root_volume_gib
from kiln.store.package_db import Inventory, NoPackageDatabase, read_inventory
from kiln.store.pins import holders as pin_holders
from kiln.store.pins import pin, pinned, unpin, unpin_holder
from kiln.store.snapshots import (
    SnapshotInfo,
    delete_blobs,
    delete_snapshot_in,
    get_snapshot,
    list_snapshots,
    snapshot_layers,
)
from kiln.store.unpack import unpack_layer
from kiln.store.watermarks import attach as attach_watermark
from kiln.store.watermarks import detach as detach_watermark

__all__ = [
    "BlobTransfer",
    "CaptureRecord",
    "CopyOutcome",
    "DeregisterResult",
    "DiskGeometry",
    "Exported",
    "FsckReport",
    "GcResult",
    "ImageInfo",
    "Inventory",
    "NoPackageDatabase",
    "SnapshotInfo",
    "adopt_top_layer",
    "assert_launchable",
    "attach_artifact",
    "attach_artifacts",
    "attach_watermark",
    "bootstrap_image",
    "busybox_rootfs",
    "check_copyable",
    "copy_image",
    "copy_image_outcome",
    "create_image_from_upper",
    "create_tags",
    "create_volume_permissions",
    "delete_orphaned_snapshots",
    "delete_snapshot",
    "delete_tags",
    "deregister_image",
    "describe_images",
    "detach_watermark",
    "disable_deregistration_protection",
    "disable_image",
    "disable_image_deprecation",
    "enable_deregistration_protection",
    "enable_image",
    "enable_image_deprecation",
    "export_image",
    "export_image_detailed",
    "flatten",
    "fsck",
    "gc",
    "get_image",
    "get_snapshot",
    "image_attributes",
    "image_block_public_access",
    "image_inventory",
    "image_layers",
    "image_referrers",
    "import_rootfs",
    "kept_images",
    "launchable_layers",
    "layer_dirs",
    "list_snapshots",
    "modify_create_volume_permission",
    "modify_launch_permission",
    "pin",
    "pin_holders",
    "pinned",
    "raw_disk",
    "read_artifact",
    "referrer_types",
    "reset_launch_permission",
    "root_volume_gib",
    "set_description",
    "set_image_block_public_access",
    "set_last_launched",
    "unpin",
    "unpin_holder",
]


def import_rootfs(
    source: Path,
    *,
    name: str,
    region: str = "local",
    architecture: str | None = None,
    description: str = "",
    tags: dict[str, str] | None = None,
    root_device_type: str = "ebs",
    allow_devices: bool = False,
    compression: str = "zstd",
    owner: str = images.DEFAULT_ACCOUNT,
    volume_size: int | None = None,
) -> str:
    """Import a rootfs tarball (tar, tar.gz, tar.zst), a directory, an OCI layout or oci-archive, as
    an AMI of account ``owner``. No layer may unpack past the root volume (``volume_size`` GiB, EC2's
    8 by default) nor past the free space of KILN_HOME (``kiln.store.limits``)."""
    images.validate_name(name)
    with session() as db:
        images.check_name_free(db, region, owner, name)
    layout = Layout.for_region(region)
    limit = import_limit(volume_size)
    layers, oci_arch = import_layers(
        Path(source), layout, allow_devices=allow_devices, compression=compression, limit=limit
    )
    with pinned(region, [layer.digest for layer in layers], f"import {name}"):
        boot = None
        for layer in layers:  # validates every layer (hostile input) before the AMI exists
            unpacked = unpack_layer(layout.blobs, layer.digest, layer.media_type, limit=limit,
                                    allow_devices=allow_devices)
            boot = boot_attributes_of(unpacked) or boot
        return images.register_image(
            region,
            layers,
            name=name,
            description=description,
            architecture=architecture or (EC2_ARCH.get(oci_arch or "") if oci_arch else None),
            root_device_type=root_device_type,
            tags=tags,
            owner=owner,
            boot=boot,
        )


def bootstrap_image(
    source: str,
    *,
    name: str | None = None,
    region: str = "local",
    include: list[str] | tuple[str, ...] = (),
    owner: str = images.DEFAULT_ACCOUNT,
    volume_size: int | None = None,
) -> str:
    """A parent image from mmdebstrap minbase ("debian:bookworm", "ubuntu:noble").

    Idempotent: while the AMI ``owner`` bootstrapped from the cached tarball is registered, it is the
    answer. ``volume_size`` (GiB): the root volume of the recipe asking for it, bounding its layer.
    """
    distro, suite = parse_source(source)
    name = name or f"{distro}-{suite}-minbase"
    existing = describe_images(
        region,
        names=[name],
        owners=[owner],
        filters={"tag:kiln:source": [source]},
        include_deprecated=True,
        include_disabled=True,
    )
    if existing:
        return existing[0].id
    tarball = bootstrap_tarball(source, include)
    return import_rootfs(
        tarball,
        name=name,
        region=region,
        description=f"{distro} {suite} minbase (mmdebstrap)",
        tags={"kiln:source": source},
        owner=owner,
        volume_size=volume_size,
    )


def image_layers(ami_id: str, region: str = "local") -> list[LayerInfo]:
    with session() as db:
        row = image_for(db, ami_id, region, None)
        if row.snapshot_id is None:
            raise InvalidInput(f"{ami_id} has no root snapshot", location=ami_id)
        return [
            LayerInfo(layer.digest, layer.diff_id, layer.size, layer.media_type)
            for layer in snapshot_layers(db, row.snapshot_id)
        ]


def layer_dirs(ami_id: str, region: str = "local") -> list[Path]:
    """Unpacked read-only layer dirs of the AMI's root snapshot, BASE FIRST (overlay lowerdir order
    is the reverse). Unpacks and verifies each blob on first use."""
    layout = Layout.for_region(region)
    return [
        unpack_layer(layout.blobs, layer.digest, layer.media_type, allow_devices=True)
        for layer in image_layers(ami_id, region)
    ]


def create_image_from_upper(
    parent_ami_id: str,
    upper_dir: Path,
    *,
    name: str,
    region: str = "local",
    description: str | None = "",
    tags: dict[str, str] | None = None,
    root_device_type: str | None = None,
    owner: str = images.DEFAULT_ACCOUNT,
    record: CaptureRecord | None = None,
    volume_size: int | None = None,
) -> str:
    """A new AMI of account ``owner`` whose snapshot is the parent's layers plus one layer captured
    from an overlay upper dir (EC2 CreateImage: the instance's account owns the image, whoever owns
    the AMI it was launched from).

    ``record`` collects what :func:`adopt_top_layer` needs to use the upper dir as the new layer's
    unpacked dir afterwards.
    """
    images.validate_name(name)
    with session() as db:  # the reads before the capture, in one transaction
        parent = get_image(parent_ami_id, region)
        images.check_name_free(db, region, owner, name)
        parent_layers = image_layers(parent_ami_id, region)
    layout = Layout.for_region(region)
    with pinned(
        region, [layer.digest for layer in parent_layers], f"create-image from {parent_ami_id}"
    ) as pins:
        layer = capture(Path(upper_dir), layout.blobs, overlay=True, record=record)
        pins += pin(region, [layer.digest], f"create-image from {parent_ami_id}")
        try:
            return images.register_image(
                region,
                [*parent_layers, layer],
                name=name,
                description=description,
                architecture=parent.architecture,
                root_device_type=root_device_type or parent.root_device_type,
                tags=tags,
                parent_snapshot_id=parent.snapshot_ids[0] if parent.snapshot_ids else None,
                source_image_id=parent_ami_id,
                owner=owner,
                boot=boot_attributes_of(Path(upper_dir)) or parent.boot,
                volume_size=volume_size or parent.volume_size,
            )
        finally:
            unpin(pins[len(parent_layers) :])


def adopt_top_layer(ami_id: str, upper_dir: Path, record: CaptureRecord, region: str = "local") -> bool:
    """Move ``upper_dir`` — what ``ami_id``'s top layer was captured from (``record``), about to be
    deleted — into the layer cache as that layer's unpacked dir, sparing the first launch an unpack.
    False when it cannot stand in (the layer is then unpacked on first use)."""
    layer = image_layers(ami_id, region)[-1]
    return adopt(Layout.for_region(region).blobs, layer.digest, Path(upper_dir), record) is not None


def check_copyable(source_ami_id: str, source_region: str = "local", caller: Principal | None = None) -> ImageInfo:
    """What CopyImage checks before copying: the source visible to the caller (else
    ``InvalidAMIID.NotFound``), its snapshot readable (another account's: ``createVolumePermission``,
    else ``InvalidRequest``) and the AMI launchable (not disabled, deregistered or damaged)."""
    with session() as db:
        check_storage_readable(db, image_for(db, source_ami_id, source_region, caller), caller)
    return assert_launchable(source_ami_id, source_region, caller)


@dataclass(frozen=True)
class CopyOutcome:
    """A CopyImage's new AMI and what moving its blobs into the target region took."""

    image_id: str
    transfer: BlobTransfer


def copy_image(
    source_ami_id: str,
    *,
    source_region: str = "local",
    region: str,
    name: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    caller: Principal | None = None,
    owner: str | None = None,
) -> str:
    """EC2 CopyImage (see :func:`copy_image_outcome`); returns the new AMI's id."""
    return copy_image_outcome(
        source_ami_id, source_region=source_region, region=region, name=name, description=description,
        tags=tags, caller=caller, owner=owner,
    ).image_id


def copy_image_outcome(
    source_ami_id: str,
    *,
    source_region: str = "local",
    region: str,
    name: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    caller: Principal | None = None,
    owner: str | None = None,
) -> CopyOutcome:
    """EC2 CopyImage: the AMI's layers brought (digest-verified) into ``region``'s store and
    registered there as a new AMI with its own snapshot, owned by the caller — or, for kiln's own
    work without a caller (a build's distribution), by ``owner``.

    Blobs go once per region store: the ones the target already holds are reused (a copy within a
    region or to a region holding an earlier build moves only what is new), the others hard-linked
    where the filesystem allows, else copied. Another account's AMI must be visible to the caller
    (else ``InvalidAMIID.NotFound``) and its snapshot readable (``createVolumePermission``, else
    ``InvalidRequest``)."""
    account = caller.account if caller else owner or images.DEFAULT_ACCOUNT
    with session() as db:  # the checks in one transaction, before any blob moves: a refusal costs nothing
        source = check_copyable(source_ami_id, source_region, caller)
        layers = image_layers(source_ami_id, source_region)
        images.validate_name(name or source.name)
        images.check_name_free(db, region, account, name or source.name)
    src, dest = Layout.for_region(source_region), Layout.for_region(region)
    with pinned(region, [layer.digest for layer in layers], f"copy {source_ami_id}"):
        transfer = transfer_blobs(src.blobs, dest.blobs, [layer.digest for layer in layers])
        image_id = images.register_image(
            region,
            layers,
            name=name or source.name,
            description=source.description if description is None else description,
            architecture=source.architecture,
            root_device_type=source.root_device_type,
            tags=tags,
            source_image_id=source_ami_id,
            source_region=source_region,
            owner=account,
            boot=source.boot,
            volume_size=source.volume_size,
        )
    return CopyOutcome(image_id, transfer)


def delete_snapshot(
    snapshot_id: str, *, region: str = "local", dry_run: bool = False, caller: Principal | None = None
) -> int:
    """EC2 DeleteSnapshot (owner only; refused while a registered AMI uses it); returns the bytes freed."""
    layout = Layout.for_region(region)
    with session() as db:
        snapshot_for(db, snapshot_id, region, caller, "own")
        freed, doomed = delete_snapshot_in(db, region, snapshot_id, dry_run=dry_run)
    delete_blobs(layout, doomed)
    return freed


class _DryRun(Exception):
    """Raised inside a unit of work to roll back what a dry run computed."""


def delete_orphaned_snapshots(
    *,
    region: str = "local",
    older_than: timedelta | None = None,
    dry_run: bool = False,
    owner: str | None = None,
) -> tuple[list[tuple[str, int]], int]:
    """Delete every snapshot no registered AMI uses (created before ``now - older_than``; of account
    ``owner`` only, when given).

    Returns each snapshot with the bytes its deletion freed in turn, and the total — exact also when
    orphans share blobs (deleting the last of them frees the shared blob), because the batch runs in
    one transaction; a dry run computes the same and rolls it back.
    """
    from kiln.db.base import utcnow

    cutoff = utcnow() - older_than if older_than is not None else None
    victims = [
        snap.id
        for snap in list_snapshots(region, orphaned=True)
        if (cutoff is None or snap.created < cutoff) and owner in (None, snap.owner_id)
    ]
    layout = Layout.for_region(region)
    freed: list[tuple[str, int]] = []
    doomed: list[str] = []
    try:
        with session() as db:
            for snapshot_id in victims:
                size, blobs = delete_snapshot_in(db, region, snapshot_id, dry_run=False)
                freed.append((snapshot_id, size))
                doomed.extend(blobs)
            if dry_run:
                raise _DryRun
    except _DryRun:
        return freed, sum(size for _, size in freed)
    delete_blobs(layout, doomed)
    return freed, sum(size for _, size in freed)


def flatten(ami_id: str, dest_dir: Path, region: str = "local") -> Path:
    """The AMI's root filesystem as one directory (layers applied, whiteouts honoured)."""
    return flatten_dirs(layer_dirs(ami_id, region), Path(dest_dir))


def export_image(
    ami_id: str, fmt: str, dest: Path, region: str = "local", caller: Principal | None = None
) -> Path:
    """The AMI as a file; another account's AMI needs what CopyImage needs (it reads the storage)."""
    return export_image_detailed(ami_id, fmt, dest, region, caller).path


def export_image_detailed(
    ami_id: str, fmt: str, dest: Path, region: str = "local", caller: Principal | None = None, *,
    size: int | None = None, boot_mode: str | None = None,
) -> Exported:
    """``export_image`` saying what it wrote: a disk's size (``size`` bytes, default 8 GiB) and boot mode
    (``boot_mode``, default what the image's kiln-bootable-linux component chose), or why it won't boot."""
    with session() as db:
        image = image_for(db, ami_id, region, caller)
        check_storage_readable(db, image, caller)
        if size is None and image.volume_size:
            size = image.volume_size << 30  # the root volume the recipe's block device mapping asked for
    layout = Layout.for_region(region)
    dirs = [] if fmt in LAYOUT_FORMATS else layer_dirs(ami_id, region)
    return export_layers(layout, ami_id, dirs, fmt, Path(dest), size=size, boot_mode=boot_mode)


def raw_disk(
    ami_id: str, dest: Path, region: str = "local", caller: Principal | None = None,
    like: DiskGeometry | None = None, *, bootable: bool = False,
) -> DiskGeometry:
    """The AMI's raw disk (``export_image(fmt="raw")``), or made from another's (``like``); ``bootable``:
    an image with a kernel as its bootable disk, as large as its root volume (see ``export_raw_disk``)."""
    with session() as db:
        image = image_for(db, ami_id, region, caller)
        check_storage_readable(db, image, caller)
        volume = ((image.volume_size << 30) if image.volume_size else DEFAULT_DISK_SIZE) if bootable else None
    return export_raw_disk(Layout.for_region(region), ami_id, layer_dirs(ami_id, region), Path(dest), like,
                           volume_size=volume)


def gc(region: str = "local", *, dry_run: bool = False, grace_seconds: float = DEFAULT_GRACE) -> GcResult:
    return _gc(region, dry_run=dry_run, grace_seconds=grace_seconds)


def fsck(region: str = "local") -> FsckReport:
    return _fsck(region)


def image_inventory(ami_id: str, region: str = "local", caller: Principal | None = None) -> Inventory:
    """The AMI's installed packages, read from the package databases in its layers (``NoPackageDatabase``
    when it holds none)."""
    with session() as db:
        image_for(db, ami_id, region, caller)
    return read_inventory(layer_dirs(ami_id, region), ami_id)


def _subject(ami_id: str, region: str) -> tuple[Layout, Descriptor, ImageInfo]:
    info = get_image(ami_id, region)
    if not info.manifest_digest:
        raise InvalidInput(f"{ami_id} has no manifest in the region's OCI layout", location=ami_id)
    layout = Layout.for_region(region)
    return layout, Descriptor(MANIFEST_TYPE, info.manifest_digest, layout.blobs.size(info.manifest_digest)), info


def attach_artifact(ami_id: str, artifact_type: str, data: bytes, region: str = "local") -> Descriptor:
    """Store ``data`` beside the AMI as its OCI referrer of ``artifact_type`` (the one it had of that type
    goes); the artifact's creation time is the AMI's, so the same data gives the same manifest."""
    layout, subject, info = _subject(ami_id, region)
    # new blobs are safe from a concurrent gc by its grace period, as every blob written before its reference
    descriptor, stale = referrers.attach(layout, subject, artifact_type, data,
                                         created=images.ec2_time(info.creation_date) or "")
    referrers.delete_unshared(layout, stale, keep={descriptor.digest})
    return descriptor


def _manifest_of(ami_id: str, region: str) -> tuple[str | None, Any]:
    """The AMI's manifest digest and creation date, from its row alone (no tags, grants, scans)."""
    with session() as db:
        row = image_for(db, ami_id, region, None)
        return row.manifest_digest, row.creation_date


def attach_artifacts(ami_id: str, artifacts: list[tuple[str, bytes]], region: str = "local") -> list[Descriptor]:
    """:func:`attach_artifact` for several (artifact type, data), one per type, in one index update."""
    digest, created = _manifest_of(ami_id, region)
    if not digest:
        raise InvalidInput(f"{ami_id} has no manifest in the region's OCI layout", location=ami_id)
    layout = Layout.for_region(region)
    subject = Descriptor(MANIFEST_TYPE, digest, layout.blobs.size(digest))
    descriptors, stale = referrers.attach_many(layout, subject, artifacts, created=images.ec2_time(created) or "")
    referrers.delete_unshared(layout, stale, keep={d.digest for d in descriptors})
    return descriptors


def referrer_types(ami_id: str, region: str = "local") -> set[str]:
    """The artifact types of the AMI's referrers (none for an AMI without an OCI manifest)."""
    digest, _ = _manifest_of(ami_id, region)
    if not digest:
        return set()
    return {r.get("artifactType", "") for r in referrers.referrers(Layout.for_region(region), digest)}


def image_referrers(ami_id: str, region: str = "local", artifact_type: str | None = None) -> list[dict[str, Any]]:
    """The AMI's referrers in the region's layout (the referrers API's descriptors)."""
    layout, subject, _ = _subject(ami_id, region)
    return referrers.referrers(layout, subject.digest, artifact_type)


def read_artifact(ami_id: str, artifact_type: str, region: str = "local") -> bytes | None:
    """The bytes of the AMI's stored artifact of ``artifact_type``, or None."""
    layout, subject, _ = _subject(ami_id, region)
    for descriptor in referrers.referrers(layout, subject.digest, artifact_type):
        manifest = layout.read_json_blob(descriptor["digest"])
        return layout.blobs.read_bytes(manifest["layers"][0]["digest"])
    return None
