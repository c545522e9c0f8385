"""``kiln image publish AMI --to aws``: the image's raw disk into a new EBS snapshot through the EBS
direct APIs, then an AMI registered from it, with kiln's tags.

- The disk is the store's reproducible raw export (a bootable image's GPT disk, as large as its root
  volume). When the image's parent was published to the same region, account and endpoint before,
  the disk is the parent's disk made again with the child's layers applied to its file system in
  place (``kiln.store.export.export_raw_disk``): a change of N bytes changes about N bytes of the
  disk. The snapshot names the parent's as ``ParentSnapshotId`` and only blocks whose SHA-256
  differs from the parent's are sent.
- Progress is recorded per block (``publications``/``published_blocks``): a killed publish, run again,
  continues the same pending snapshot and sends only the blocks not recorded. When AWS no longer has
  that snapshot pending (timed out, deleted), it starts a new one.
- Nothing is recorded before the image, the region and the credentials are known good.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.aws import ami as amis
from kiln.aws.blocks import ZERO_DIGEST, linear_checksum, volume_size_gib
from kiln.aws.ebs_direct import EbsDirect
from kiln.aws.errors import AwsError
from kiln.aws.session import Clients, Target
from kiln.aws.upload import UploadPlan, UploadResult, upload
from kiln.errors import InvalidInput
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION, cache_dir
from kiln.services.ec2.callers import principal
from kiln.services.publishing import records
from kiln.services.publishing.records import COMPLETING, REGISTERED, Place, PublicationInfo
from kiln.store import api
from kiln.store.api import DiskGeometry, ImageInfo

TARGETS = ("aws",)
Progress = Callable[[int, int], None]  # (bytes done, bytes in all)
Note = Callable[[str], None]


def _ami_tags(info: ImageInfo, source_region: str) -> dict[str, str]:
    """The kiln image's own tags (creation date, recipe, pipeline version when built by a pipeline), and
    where it came from."""
    tags = {key: value for key, value in info.tags.items() if not key.startswith("aws:")}
    tags.setdefault("kiln:CreationDate", info.creation_date.strftime("%Y-%m-%dT%H:%M:%SZ"))
    tags["kiln:SourceImageId"] = info.id
    tags["kiln:SourceRegion"] = source_region
    return tags


def _parent(info: ImageInfo, source_region: str, place: Place) -> PublicationInfo | None:
    """The publication of the image's parent at the same place, if it was published there."""
    if not info.source_image_id or (info.source_region or source_region) != source_region:
        return None
    parent = records.find(info.source_image_id, source_region, place)
    return parent if parent and parent.state == REGISTERED else None


def _geometry(pub: PublicationInfo) -> DiskGeometry | None:
    """How ``pub``'s disk was made, for making it (or a child's from it) again; None for a bootable disk
    recorded before 0022 (made as a plain export is)."""
    if pub.disk_identity.startswith("bootable:"):
        return None
    return DiskGeometry(pub.disk_identity, pub.disk_epoch, pub.disk_fs_size or pub.disk_size,
                        pub.disk_base_layers or 0)


def _check_permissions(permissions: list[dict[str, str]]) -> list[dict[str, str]]:
    """Launch permission entries as EC2 takes them, checked before anything is sent or recorded."""
    for entry in permissions:
        (kind, value), = entry.items()
        if kind not in amis.LAUNCH_PERMISSION_KINDS:
            raise InvalidInput(f"launch permission kind must be one of {', '.join(amis.LAUNCH_PERMISSION_KINDS)}, "
                               f"not {kind!r}", location="--share")
        if kind == "UserId" and not (value.isdigit() and len(value) == 12):
            raise InvalidInput(f"UserId must be a 12-digit account id, not {value!r}", location="--share")
        if kind == "Group" and value != "all":
            raise InvalidInput(f"Group must be 'all', not {value!r}", location="--share")
        if kind.endswith("Arn") and not value.startswith("arn:aws"):
            raise InvalidInput(f"{kind} must be an ARN, not {value!r}", location="--share")
    return permissions


def _result(info: ImageInfo, pub: PublicationInfo, place: Place, run: UploadResult | None, retries: int,
            resumed: bool, permissions: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "ImageId": info.id,
        "Target": place.target,
        "Region": place.region,
        "AccountId": place.account,
        "AmiId": pub.remote_image_id,
        "SnapshotId": pub.snapshot_id,
        "ParentSnapshotId": pub.parent_snapshot_id,
        "VolumeSize": pub.volume_size,
        "DiskBytes": pub.disk_size,
        "BlocksTotal": run.blocks if run else None,
        "BlocksSent": run.sent if run else 0,
        "BlocksSkipped": run.skipped if run else None,
        "BlocksZero": run.zero if run else None,
        "BlocksUnchanged": run.unchanged if run else None,
        "BlocksAlreadyWritten": run.already_written if run else None,
        "BytesSent": run.bytes_sent if run else 0,
        "Retries": retries,
        "Resumed": resumed,
        "AlreadyPublished": run is None,
        "LaunchPermissionsAdded": permissions,
    }


def publish_image(
    image_id: str,
    *,
    to: str = "aws",
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    source_region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
    workers: int = 8,
    launch_permissions: list[dict[str, str]] | None = None,
    progress: Progress | None = None,
    note: Note | None = None,
) -> dict[str, Any]:
    """Publish ``image_id`` (see the module's doc); ``launch_permissions`` (EC2 entries) are added to
    the AMI, also when it was published before."""
    permissions = _check_permissions(launch_permissions or [])
    if to not in TARGETS:
        raise InvalidInput(f"publish target must be one of {', '.join(TARGETS)}", location="--to")
    if not 1 <= workers <= 64:
        raise InvalidInput("workers must be 1 to 64", location="--workers")
    say = note or (lambda _: None)
    caller = principal(account)
    info = api.get_image(image_id, source_region, caller)
    clients = Clients(Target(region, profile, endpoint_url), pool=workers + 2)
    place = Place(to, clients.region, clients.account(), endpoint_url or "")
    ebs, ec2 = EbsDirect(clients.client("ebs")), clients.client("ec2")

    pub = records.find(image_id, source_region, place)
    if pub and pub.state == REGISTERED:
        assert pub.remote_image_id is not None
        amis.share(ec2, pub.remote_image_id, permissions)
        return _result(info, pub, place, None, 0, False, permissions)
    parent = None if pub else _parent(info, source_region, place)

    scratch = Path(tempfile.mkdtemp(dir=_scratch_root(), prefix="publish-"))
    try:
        say(f"writing the raw disk of {image_id} ...")
        # a resumed publish makes its disk as the first run did; a child makes its parent's again and
        # applies its own layers to it in place, so only what changed differs
        like = _geometry(pub) if pub else (_geometry(parent) if parent else None)
        disk = scratch / "disk.raw"
        bootable = info.boot.boot_mode is not None
        geometry = api.raw_disk(image_id, disk, source_region, caller, like=like, bootable=bootable)
        resumed = pub is not None
        if pub is None:
            disk_bytes = disk.stat().st_size
            volume = max(volume_size_gib(disk_bytes), parent.volume_size if parent else 1)
            pub = records.create(
                image_id, source_region, place, parent_snapshot_id=parent.snapshot_id if parent else None,
                volume_size=volume, disk_size=disk_bytes, disk_identity=geometry.identity,
                disk_epoch=geometry.epoch, disk_fs_size=geometry.size, disk_base_layers=geometry.base_layers,
                profile=profile,
            )  # fmt: skip
        run = None
        if pub.state != COMPLETING:
            pub, run = _upload(pub, info, ebs, ec2, disk, workers, progress, say)
        else:
            _complete_again(pub, ebs, ec2)
        assert pub.snapshot_id is not None
        if pub.remote_image_id is None:  # else registered by a run killed before it finished
            say(f"waiting for {pub.snapshot_id} to complete ...")
            amis.wait_completed(ec2, pub.snapshot_id)
            spec = amis.AmiSpec(
                name=info.name, description=info.description or f"kiln {image_id}",
                architecture=info.architecture, volume_size=pub.volume_size,
                boot_mode=info.boot.boot_mode or ("uefi" if info.architecture == "arm64" else "uefi-preferred"),
                ena_support=info.boot.ena_support is not False,
            )  # fmt: skip
            remote = amis.register(ec2, pub.snapshot_id, spec, _ami_tags(info, source_region))
            pub = records.set_state(pub.id, COMPLETING, remote_image_id=remote)
        assert pub.remote_image_id is not None
        amis.share(ec2, pub.remote_image_id, permissions)
        pub = records.set_state(pub.id, REGISTERED)
        return _result(info, pub, place, run, ebs.retries, resumed, permissions)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _scratch_root() -> Path:
    root = cache_dir() / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _upload(pub: PublicationInfo, info: ImageInfo, ebs: EbsDirect, ec2: Any, disk: Path, workers: int,
            progress: Progress | None, say: Note) -> tuple[PublicationInfo, UploadResult]:
    """Start (or find) the pending snapshot, send what it lacks, complete it."""
    if pub.snapshot_id and amis.snapshot_state(ec2, pub.snapshot_id) in (None, "error"):
        say(f"{pub.snapshot_id} is no longer pending: starting a new snapshot")
        pub = records.restart(pub.id)
    parent_blocks = _parent_blocks(pub)
    try:
        pub, run = _send(pub, info, ebs, disk, parent_blocks, workers, progress, say)
    except AwsError as error:
        # resuming a snapshot AWS no longer takes blocks for (it timed out): once, start over
        if not pub.snapshot_id or error.aws_code not in ("ValidationException", "ResourceNotFoundException"):
            raise
        if not records.blocks(pub.id, sent_only=True):
            raise
        say(f"{pub.snapshot_id} refused a block ({error.aws_code}): starting a new snapshot")
        pub, run = _send(records.restart(pub.id), info, ebs, disk, parent_blocks, workers, progress, say)
    assert pub.snapshot_id is not None
    records.set_state(pub.id, COMPLETING, blocks_skipped=run.skipped)
    _complete(ebs, pub.snapshot_id, run.written)
    return records.find_by_id(pub.id), run


def _complete(ebs: EbsDirect, snapshot_id: str, written: dict[int, bytes]) -> None:
    changed = sorted(written)
    ebs.complete(snapshot_id, len(changed), linear_checksum(written[index] for index in changed))


def _complete_again(pub: PublicationInfo, ebs: EbsDirect, ec2: Any) -> None:
    """A run killed around CompleteSnapshot: ask again while the snapshot is still pending (a second
    request for one AWS already took may be refused; the wait that follows tells)."""
    assert pub.snapshot_id is not None
    if amis.snapshot_state(ec2, pub.snapshot_id) == "pending":
        with contextlib.suppress(AwsError):
            _complete(ebs, pub.snapshot_id, records.blocks(pub.id, sent_only=True))


def _send(pub: PublicationInfo, info: ImageInfo, ebs: EbsDirect, disk: Path, parent_blocks: dict[int, bytes],
          workers: int, progress: Progress | None, say: Note) -> tuple[PublicationInfo, UploadResult]:
    if pub.snapshot_id is None:
        snapshot_id = ebs.start_snapshot(
            volume_size=pub.volume_size, description=f"kiln {info.id} {info.name}",
            tags={"kiln:SourceImageId": info.id, "Name": info.name}, client_token=pub.client_token,
            parent_snapshot_id=pub.parent_snapshot_id,
        )  # fmt: skip
        records.set_snapshot(pub.id, snapshot_id)
        pub = records.find_by_id(pub.id)
    assert pub.snapshot_id is not None
    written = records.blocks(pub.id, sent_only=True)
    total = disk.stat().st_size
    done = 0

    def advance(amount: int) -> None:
        nonlocal done
        done = min(total, done + amount)
        if progress:
            progress(done, total)

    def record(entries: list[tuple[int, bytes, bool]]) -> None:
        records.record_blocks(pub.id, entries)

    say(f"uploading to {pub.snapshot_id} ({len(written)} blocks already there) ...")
    plan = UploadPlan(pub.snapshot_id, parent=parent_blocks, written=written)
    return pub, upload(ebs, disk, plan, workers=workers, progress=advance, record=record)


def _parent_blocks(pub: PublicationInfo) -> dict[int, bytes]:
    """The parent snapshot's content, block by block (zero blocks left out)."""
    if not pub.parent_snapshot_id:
        return {}
    parent = records.find_by_snapshot(pub.parent_snapshot_id)
    if parent is None:
        return {}
    return {index: sha for index, sha in records.blocks(parent.id).items() if sha != ZERO_DIGEST}
