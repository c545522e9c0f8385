"""AMIs: registration and the EC2 image operations (describe, tags, deprecation, disable,
deregistration protection, launch permissions, deregistration)."""

from __future__ import annotations

import fnmatch
import functools
import platform
import re
import threading
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.accounts import AccountRow
from kiln.db.tables.store import StoreImage, StoreLaunchPermission, StoreTag
from kiln.ec2_errors import (
    InvalidAMIIDNotFound,
    InvalidAMINameDuplicate,
    InvalidAMINameMalformed,
    InvalidParameterValue,
)
from kiln.errors import InvalidInput
from kiln.home import DEFAULT_ACCOUNT, database_url
from kiln.model.ids import new_id
from kiln.model.sharing import ExecutableScope, OwnerScope, Principal, is_public, visible_tags
from kiln.store import image_changes
from kiln.store.access import image_for, launch_permissions
from kiln.store.boot_attributes import BootAttributes
from kiln.store.flights import Flights
from kiln.store.generation import Generation, generation, look
from kiln.store.layers import LayerInfo
from kiln.store.layout import Layout
from kiln.store.pins import pin, unpin
from kiln.store.scans import EC2_LABELS, ScanResults, scan_results_by_image
from kiln.store.snapshots import create_snapshot, record_layers
from kiln.store.times import ec2_time
from kiln.store.watermarks import Watermark, inherit, watermarks_by_image

ARCHITECTURES = ("i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac")
ROOT_DEVICE_TYPES = ("ebs", "instance-store")
_NAME = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")


def host_architecture() -> str:
    machine = platform.machine()
    return {"aarch64": "arm64", "amd64": "x86_64", "i686": "i386"}.get(machine, machine)


def validate_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidAMINameMalformed(
            "AMI names must be 3-128 characters of letters, numbers, "
            "spaces and ()[]./-'@_",
            location=name,
        )


class Ec2Shape(dict[str, object]):
    """An ``Image`` shape that remembers what it was rendered to. ``source`` is the shape it was copied
    from (never handed out, so never changed) and ``memo`` what the wire made of it, keyed by the wire's
    own choice; a renderer may reuse a memo only while the shape still equals ``source``."""

    __slots__ = ("memo", "source")
    memo: dict[Any, Any]
    source: dict[str, object]

    frozen = False  # a shape that cannot change may use its memo without comparing itself to its source

    @classmethod
    def of(cls, source: dict[str, object], memo: dict[Any, Any]) -> Ec2Shape:
        shape = cls(source)
        shape.source, shape.memo = source, memo
        return shape


class FrozenEc2Shape(Ec2Shape):
    """An ``Image`` shape shared by every answer that shows the image as it is (the API's pages): it
    refuses changes, so the wire renders it from its memo without comparing it to its source first."""

    __slots__ = ()
    frozen = True

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("a shared EC2 image shape is read-only; copy it to change it")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse  # type: ignore[assignment]


@dataclass
class ImageInfo:
    id: str
    name: str
    state: str
    architecture: str
    root_device_type: str
    creation_date: datetime
    region: str = "local"
    owner_id: str = DEFAULT_ACCOUNT
    description: str = ""
    deprecation_time: datetime | None = None
    last_launched_time: datetime | None = None
    state_reason: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    snapshot_ids: list[str] = field(default_factory=list)
    launch_permissions: list[dict[str, str]] = field(default_factory=list)
    deregistration_protection: str = "disabled"
    manifest_digest: str | None = None
    source_image_id: str | None = None
    source_region: str | None = None
    owner_alias: str | None = None
    boot: BootAttributes = field(default_factory=BootAttributes)
    volume_size: int | None = None  # GiB: the root volume's size (None: EC2's default, 8 GiB)
    watermarks: list[Watermark] = field(default_factory=list)
    scan_results: ScanResults | None = None  # None: never scanned
    # to_ec2's answer, made once: an ImageInfo is not changed after it is made (``seen_by`` makes another)
    _ec2: dict[str, object] | None = field(default=None, init=False, repr=False, compare=False)
    _rendered: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _shared: FrozenEc2Shape | None = field(default=None, init=False, repr=False, compare=False)
    _views: dict[str, ImageInfo] = field(default_factory=dict, init=False, repr=False, compare=False)  # seen_by's

    @property
    def public(self) -> bool:
        return is_public(self.launch_permissions)

    @property
    def disabled(self) -> bool:
        return self.state == "disabled"

    @property
    def deprecated(self) -> bool:
        return self.deprecation_time is not None and self.deprecation_time <= utcnow()

    def seen_by(self, account: str | None) -> ImageInfo:
        """The AMI as ``account`` sees it: another account sees only ``ec2:SharedTag/`` tags and not
        when it was last launched (both the owner's business)."""
        if account is None or account == self.owner_id:
            return self
        seen = self._views.get(account)
        if seen is None:
            seen = replace(self, tags=visible_tags(self.tags, self.owner_id, account), last_launched_time=None)
            self._views[account] = seen
        return seen

    def to_ec2(self) -> dict[str, object]:
        """The EC2 ``Image`` shape (DescribeImages field names): a dict of its own (its lists shared)."""
        if self._ec2 is None:
            self._ec2 = self._shape()
        return Ec2Shape.of(self._ec2, self._rendered)

    def shared_ec2(self) -> FrozenEc2Shape:
        """The ``Image`` shape of :meth:`to_ec2`, one read-only object for every caller (no copy made)."""
        if self._shared is None:
            if self._ec2 is None:
                self._ec2 = self._shape()
            shared = FrozenEc2Shape.of(self._ec2, self._rendered)
            assert isinstance(shared, FrozenEc2Shape)
            self._shared = shared
        return self._shared

    def _shape(self) -> dict[str, object]:
        data: dict[str, object] = {
            "ImageId": self.id,
            "ImageLocation": f"{self.owner_id}/{self.name}",
            "State": self.state,
            "OwnerId": self.owner_id,
            "CreationDate": ec2_time(self.creation_date),
            "Public": self.public,
            "Architecture": self.architecture,
            "ImageType": "machine",
            "Name": self.name,
            "Description": self.description,
            "RootDeviceType": self.root_device_type,
            "RootDeviceName": "/dev/xvda",
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/xvda",
                    "Ebs": {
                        "SnapshotId": s,
                        "DeleteOnTermination": True,
                        "VolumeType": "gp3",
                        "Encrypted": False,
                        **({"VolumeSize": self.volume_size} if self.volume_size else {}),
                    },
                }
                for s in self.snapshot_ids
            ],
            "VirtualizationType": "hvm",
            "Hypervisor": "xen",
            "EnaSupport": self.boot.ena_support is not False,
            "PlatformDetails": "Linux/UNIX",
            "UsageOperation": "RunInstances",
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(self.tags.items())],
            "DeregistrationProtection": self.deregistration_protection,
        }
        for key, value in (("BootMode", self.boot.boot_mode), ("ImdsSupport", self.boot.imds_support),
                           ("TpmSupport", self.boot.tpm_support)):
            if value is not None:
                data[key] = value
        if self.deprecation_time is not None:
            data["DeprecationTime"] = ec2_time(self.deprecation_time)
        if self.last_launched_time is not None:
            data["LastLaunchedTime"] = ec2_time(self.last_launched_time)
        if self.state_reason:
            data["StateReason"] = {"Code": self.state, "Message": self.state_reason}
        if self.source_image_id:
            data["SourceImageId"] = self.source_image_id
            data["SourceImageRegion"] = self.source_region or self.region
        if self.owner_alias:
            data["ImageOwnerAlias"] = self.owner_alias
        if self.watermarks:
            data["ImageWatermarks"] = [mark.to_ec2() for mark in self.watermarks]
        if self.scan_results is not None:
            data["ScanResults"] = self.scan_results.to_ec2()
        return data


def _protection(row: Any) -> str:
    if row.protection:
        return "enabled-with-cooldown" if row.protection_cooldown else "enabled"
    if row.protection_until is not None and row.protection_until > utcnow():
        return f"disabled-until {ec2_time(row.protection_until)}"
    return "disabled"


def owner_aliases(db: Session) -> dict[str, str]:
    """account id -> its ``ImageOwnerAlias``, for the few accounts that have one."""
    query = select(AccountRow.id, AccountRow.image_owner_alias).where(AccountRow.image_owner_alias.is_not(None))
    return {account: alias for account, alias in db.execute(query)}


Extras = tuple[dict[str, str], list[dict[str, str]], list[Watermark], ScanResults | None]


def no_extras() -> Extras:
    return ({}, [], [], None)


def to_info(db: Session, row: Any, aliases: dict[str, str] | None = None,
            preloaded: Extras | None = None) -> ImageInfo:
    """The image as EC2 describes it (``row`` a ``StoreImage`` or a row of its columns); ``preloaded`` is
    its (tags, launch permissions, watermarks) when the caller read those for many images at once
    (``_image_extras``)."""
    if preloaded is None:
        tags = dict(db.execute(select(StoreTag.key, StoreTag.value).where(StoreTag.resource_id == row.id)).all())
        permissions = launch_permissions(db, row.id)
        marks = watermarks_by_image(db, [row.id]).get(row.id, [])
        scanned = scan_results_by_image(db, [row.id]).get(row.id)
    else:
        tags, permissions, marks, scanned = preloaded
    if aliases is None:
        aliases = owner_aliases(db)
    return ImageInfo(
        id=row.id,
        name=row.name,
        state=row.state,
        architecture=row.architecture,
        root_device_type=row.root_device_type,
        creation_date=row.creation_date,
        region=row.region,
        owner_id=row.owner_id,
        description=row.description,
        deprecation_time=row.deprecation_time,
        last_launched_time=row.last_launched_time,
        state_reason=row.state_reason,
        tags=tags,
        snapshot_ids=[row.snapshot_id] if row.snapshot_id else [],
        launch_permissions=permissions,
        deregistration_protection=_protection(row),
        manifest_digest=row.manifest_digest,
        source_image_id=row.source_image_id,
        source_region=row.source_region,
        owner_alias=aliases.get(row.owner_id),
        boot=BootAttributes(row.boot_mode, row.ena_support, row.imds_support, row.tpm_support),
        volume_size=row.volume_size,
        watermarks=marks,
        scan_results=scanned,
    )




def _image_extras(db: Session, image_ids: list[str] | None, region: str) -> dict[str, Extras]:
    """(tags, launch permissions, watermarks) of the given images, or of every image of ``region``: three
    queries instead of three per image."""
    found: dict[str, Extras] = {}
    ids = select(StoreImage.id).where(StoreImage.region == region)
    if image_ids is not None:
        ids = ids.where(StoreImage.id.in_(image_ids))
    for resource, key, value in db.execute(
        select(StoreTag.resource_id, StoreTag.key, StoreTag.value).where(StoreTag.resource_id.in_(ids))
    ):
        found.setdefault(resource, no_extras())[0][key] = value
    for image, kind, value in db.execute(
        select(StoreLaunchPermission.image_id, StoreLaunchPermission.kind, StoreLaunchPermission.value)
        .where(StoreLaunchPermission.image_id.in_(ids))
        .order_by(StoreLaunchPermission.image_id, StoreLaunchPermission.kind, StoreLaunchPermission.value)
    ):
        found.setdefault(image, no_extras())[1].append({kind: value})
    for image, marks in watermarks_by_image(db, ids).items():
        found.setdefault(image, no_extras())[2].extend(marks)
    for image, results in scan_results_by_image(db, ids).items():
        tags, permissions, marks, _ = found.get(image, no_extras())
        found[image] = (tags, permissions, marks, results)
    return found


@dataclass(frozen=True)
class _Region:
    """One region's images as read at one store generation, each as its owner sees it: ``expires`` is the
    instant a "disabled-until" deregistration protection in them runs out (the answer changes then),
    ``seq`` the change log's last change when they were read (None: the log is not kept, read everything
    next time), ``answers`` DescribeImages' answers over them (:func:`describe_images`)."""

    generation: Generation | None
    infos: list[ImageInfo]
    expires: datetime | None
    seq: int | None
    answers: dict[Hashable, tuple[datetime | None, tuple[ImageInfo, ...]]] = field(default_factory=dict)

    @functools.cached_property
    def ids(self) -> frozenset[str]:
        return frozenset(info.id for info in self.infos)


_described: dict[tuple[str, str], _Region] = {}  # (database url, region) -> its images
_described_lock = threading.Lock()
INCREMENTAL_LIMIT = 200  # more changed AMIs than this: the region is read whole (one query per table)


def _protection_ends(rows: Iterable[Any]) -> datetime | None:
    now = utcnow()
    return min((row.protection_until for row in rows if not row.protection and row.protection_until is not None
                and row.protection_until > now), default=None)


def _ordered(db: Session, region: str, image_ids: list[str] | None) -> list[Any]:
    columns = select(*StoreImage.__table__.columns).where(StoreImage.region == region)
    if image_ids is not None:
        columns = columns.where(StoreImage.id.in_(image_ids))
    return list(db.execute(columns.order_by(StoreImage.creation_date, StoreImage.id)))


def _read_region(db: Session, region: str) -> tuple[list[ImageInfo], datetime | None]:
    """Every image of ``region`` in a few queries (images, owner aliases, tags, launch permissions,
    watermarks, scans), ordered by creation and id, so images created at the same instant keep one order
    from call to call."""
    aliases = owner_aliases(db)
    rows = _ordered(db, region, None)
    extras = _image_extras(db, None, region)
    return [to_info(db, row, aliases, extras.get(row.id, no_extras())) for row in rows], _protection_ends(rows)


def _reread(db: Session, region: str, known: _Region, changed: set[str], seq: int,
            now_generation: Generation | None) -> _Region:
    """``known`` with the images of ``changed`` read again (new, changed, or gone from the region); the
    same answers while none of them is in the region."""
    ids = sorted(changed)
    rows = _ordered(db, region, ids)
    if not rows and not any(info.id in changed for info in known.infos):
        return _Region(now_generation, known.infos, known.expires, seq, known.answers)
    aliases = owner_aliases(db)
    extras = _image_extras(db, ids, region)
    fresh = [to_info(db, row, aliases, extras.get(row.id, no_extras())) for row in rows]
    infos = sorted([info for info in known.infos if info.id not in changed] + fresh,
                   key=lambda info: (info.creation_date, info.id))
    ends = [end for end in (known.expires, _protection_ends(rows)) if end is not None]
    return _Region(now_generation, infos, min(ends, default=None), seq)


def _read(db: Session, region: str, known: _Region | None, now_generation: Generation | None) -> _Region:
    """The region's images now: only those changed since ``known`` was read when the change log tells
    which, else all of them."""
    if not image_changes.tracked(db):
        return _Region(now_generation, *_read_region(db, region), None)
    seq = image_changes.last_change(db)
    if known is not None and known.seq is not None and (known.expires is None or utcnow() < known.expires):
        changed = image_changes.changed_since(db, known.seq) if seq > known.seq else set()
        if image_changes.EVERY_IMAGE not in changed and len(changed) <= INCREMENTAL_LIMIT:
            return _reread(db, region, known, changed, seq, now_generation)
    return _Region(now_generation, *_read_region(db, region), seq)


def _still(url: str, known: _Region, now_generation: Generation) -> _Region | None:
    """``known`` at ``now_generation`` when the change log says no AMI of its region (nor any new AMI)
    changed since it was read: a look on this thread's generation watcher, no unit of work (a commit of
    something else, many a second beside a busy writer, costs one statement). None: read."""
    if known.seq is None or (known.expires is not None and utcnow() >= known.expires):
        return None
    found = look(url, image_changes.CHANGES_AT_ONCE, (known.seq,))
    told = image_changes.changes_at_once(found) if found is not None else None
    if told is None:
        return None
    seq, changed = told
    if image_changes.EVERY_IMAGE in changed or any(i in known.ids or i.startswith("ami-") for i in changed):
        return None
    return _Region(now_generation, known.infos, known.expires, seq, known.answers)


class _Reading:
    """A read of one region's images under way: when it began (before its transaction did) and its answer."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.done = threading.Event()
        self.region: _Region | None = None


_reading: dict[tuple[str, str], _Reading] = {}
READ_WAIT = 60.0


def _region_images(region: str) -> _Region:
    """The images of ``region``, from memory while the store has not changed since they were read; after
    a commit, only the images it changed are read again (``kiln.store.image_changes``).

    After a commit, calls at the same moment share one read instead of each reading: a call takes the
    answer of a read that began after it did (that read sees every commit made before the call), else
    waits for the read under way and looks again."""
    url = database_url()
    asked = time.monotonic()
    while True:
        now_generation = generation(url)  # read before the data: a commit in between makes the next call re-read
        if now_generation is None:
            with session(url) as db:
                return _Region(None, *_read_region(db, region), None)
        cached = _described.get((url, region))
        if cached is not None and cached.generation == now_generation and (
                cached.expires is None or utcnow() < cached.expires):
            return cached
        still = _still(url, cached, now_generation) if cached is not None else None
        if still is not None:
            with _described_lock:
                _described[(url, region)] = still
            return still
        with _described_lock:
            reading = _reading.get((url, region))
            mine = reading is None
            if reading is None:
                reading = _reading[(url, region)] = _Reading()
        if not mine:
            reading.done.wait(READ_WAIT)
            if reading.region is not None and reading.began >= asked:
                return reading.region
            continue
        try:
            with session(url) as db:
                fresh = _read(db, region, cached, now_generation)
            with _described_lock:
                _described[(url, region)] = fresh
            reading.region = fresh
            return fresh
        finally:
            with _described_lock:
                _reading.pop((url, region), None)
            reading.done.set()


def check_name_free(db: Session, region: str, owner: str, name: str) -> None:
    clash = db.execute(
        select(StoreImage.id).where(
            StoreImage.region == region,
            StoreImage.owner_id == owner,
            StoreImage.name == name,
            StoreImage.state != "deregistered",
        )
    ).first()
    if clash:
        raise InvalidAMINameDuplicate(f"AMI name {name} is already in use by AMI {clash[0]}")


def register_image(
    region: str,
    layers: list[LayerInfo],
    *,
    name: str,
    description: str = "",
    architecture: str | None = None,
    root_device_type: str = "ebs",
    tags: dict[str, str] | None = None,
    parent_snapshot_id: str | None = None,
    source_image_id: str | None = None,
    source_region: str | None = None,
    owner: str = DEFAULT_ACCOUNT,
    boot: BootAttributes | None = None,
    volume_size: int | None = None,
) -> str:
    """Write the OCI manifest for durable ``layers`` and register the AMI in one transaction;
    ``volume_size`` (GiB) is its root volume's size."""
    validate_name(name)
    architecture = architecture or host_architecture()
    if architecture not in ARCHITECTURES:
        raise InvalidInput(f"architecture must be one of {', '.join(ARCHITECTURES)}", location=architecture)
    if root_device_type not in ROOT_DEVICE_TYPES:
        raise InvalidInput("root device type must be ebs or instance-store", location=root_device_type)
    with session() as db:
        check_name_free(db, region, owner, name)
    layout = Layout.for_region(region)
    ami_id = new_id("ami")
    created = utcnow()
    pins = pin(region, [layer.digest for layer in layers], f"register {ami_id}")
    try:
        manifest, config = layout.write_image(
            [layer.descriptor for layer in layers],
            [layer.diff_id for layer in layers],
            architecture=architecture,
            created=ec2_time(created) or "",
            labels={"kiln.image-id": ami_id, "kiln.image-name": name},
        )
        pins += pin(region, [manifest.digest, config.digest], f"register {ami_id}")
        with session() as db:
            check_name_free(db, region, owner, name)
            record_layers(db, region, layers)
            snap_id = create_snapshot(
                db,
                region,
                [layer.digest for layer in layers],
                parent_id=parent_snapshot_id,
                description=f"Created by kiln for {ami_id}",
                owner=owner,
            )
            db.add(
                StoreImage(
                    id=ami_id,
                    region=region,
                    owner_id=owner,
                    name=name,
                    description=description,
                    architecture=architecture,
                    root_device_type=root_device_type,
                    state="available",
                    snapshot_id=snap_id,
                    manifest_digest=manifest.digest,
                    source_image_id=source_image_id,
                    source_region=source_region or (region if source_image_id else None),
                    creation_date=created,
                    protection=False,
                    protection_cooldown=False,
                    boot_mode=boot.boot_mode if boot else None,
                    ena_support=boot.ena_support if boot else None,
                    imds_support=boot.imds_support if boot else None,
                    tpm_support=boot.tpm_support if boot else None,
                    volume_size=volume_size,
                )
            )
            for key, value in (tags or {}).items():
                db.add(StoreTag(resource_id=ami_id, key=key, value=value))
            if source_image_id:
                inherit(db, source_image_id, ami_id)
        layout.add_ref(ami_id, manifest)  # fsck re-adds it if a crash lands between commit and here
    finally:
        unpin(pins)
    return ami_id


def _match(value: str | None, patterns: Iterable[str]) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _matches(info: ImageInfo, key: str, values: list[str]) -> bool:
    simple = {
        "name": info.name,
        "state": info.state,
        "owner-id": info.owner_id,
        "owner-alias": info.owner_alias,
        "image-id": info.id,
        "architecture": info.architecture,
        "root-device-type": info.root_device_type,
        "description": info.description,
        "is-public": str(info.public).lower(),
        "image-type": "machine",
        "source-image-id": info.source_image_id,
        "source-image-region": (info.source_region or info.region) if info.source_image_id else None,
        "creation-date": ec2_time(info.creation_date),
    }
    if key in simple:
        return _match(simple[key], values)
    if key.startswith("tag:"):
        return _match(info.tags.get(key[4:]), values)
    if key == "tag-key":
        return any(_match(k, values) for k in info.tags)
    if key.startswith("image-watermark."):
        return _watermark_matches(info, key.removeprefix("image-watermark."), values)
    if key.startswith("scan-result."):
        return _scan_result_matches(info, key.removeprefix("scan-result."), values)
    if key == "block-device-mapping.snapshot-id":
        return any(_match(s, values) for s in info.snapshot_ids)
    raise InvalidParameterValue(f"The filter '{key}' is invalid", location=key)


_WATERMARK_FIELDS = {
    "watermark-key": "WatermarkKey",
    "source-image-id": "SourceImageId",
    "source-image-region": "SourceImageRegion",
    "source-image-creation-time": "SourceImageCreationTime",
    "watermark-creation-time": "WatermarkCreationTime",
}


def _watermark_matches(info: ImageInfo, member: str, values: list[str]) -> bool:
    if member not in _WATERMARK_FIELDS:
        raise InvalidParameterValue(f"The filter 'image-watermark.{member}' is invalid", location=member)
    return any(_match(mark.to_ec2()[_WATERMARK_FIELDS[member]], values) for mark in info.watermarks)


_SCAN_RESULT_FIELDS = {
    "highest-finding-severity-label": "HighestFindingSeverityLabel",
    "finding-scan-date": "FindingScanDate",
    **{f"{label.lower()}-fix-available-since": f"{label}FixAvailableSince" for label in EC2_LABELS},
}


def _scan_result_matches(info: ImageInfo, member: str, values: list[str]) -> bool:
    if member not in _SCAN_RESULT_FIELDS:
        raise InvalidParameterValue(f"The filter 'scan-result.{member}' is invalid", location=member)
    if info.scan_results is None:
        return False
    return _match(info.scan_results.to_ec2().get(_SCAN_RESULT_FIELDS[member]), values)


def describe_images(
    region: str = "local",
    *,
    image_ids: list[str] | None = None,
    names: list[str] | None = None,
    owners: list[str] | None = None,
    executable_users: list[str] | None = None,
    filters: dict[str, list[str]] | None = None,
    include_deprecated: bool = False,
    include_disabled: bool = False,
    caller: Principal | None = None,
) -> list[ImageInfo]:
    """EC2 DescribeImages: deregistered, deprecated and disabled AMIs hidden unless asked for.

    With a ``caller``: only the AMIs it may see (its own, public ones, those shared with it directly
    or through its organization or OU), each as it sees it; its own deprecated AMIs are always
    listed. An id it may not see is ``InvalidAMIID.NotFound`` like an unknown one. Without a caller
    (kiln's own work) every AMI is seen, and ``self`` is the default account.
    """
    return list(kept_images(region, image_ids=image_ids, names=names, owners=owners,
                            executable_users=executable_users, filters=filters,
                            include_deprecated=include_deprecated, include_disabled=include_disabled,
                            caller=caller))


def kept_images(
    region: str = "local",
    *,
    image_ids: list[str] | None = None,
    names: list[str] | None = None,
    owners: list[str] | None = None,
    executable_users: list[str] | None = None,
    filters: dict[str, list[str]] | None = None,
    include_deprecated: bool = False,
    include_disabled: bool = False,
    caller: Principal | None = None,
) -> tuple[ImageInfo, ...]:
    """:func:`describe_images`' answer as kept in memory: one read-only object for every call while the
    answer holds, and a new object once it may differ (an AMI of the region changed, an image's
    deprecation time came), so a caller may keep what it made of the answer for as long as it is handed
    the same object. After a change, concurrent calls asking the same compute it once."""
    region_images = _region_images(region)
    try:
        key: Hashable = (tuple(image_ids or ()), tuple(names or ()), tuple(owners or ()),
                         tuple(executable_users or ()),
                         tuple(sorted((name, tuple(values)) for name, values in (filters or {}).items())),
                         include_deprecated, include_disabled, caller)
        hash(key)
    except TypeError:  # a value of a kind no client sends: answered, not kept
        key = None
    now = utcnow()
    kept = region_images.answers.get(key) if key is not None else None
    if kept is not None and (kept[0] is None or now < kept[0]):
        return kept[1]

    def answer() -> tuple[ImageInfo, ...]:
        result = tuple(_describe(region, region_images.infos, now, image_ids=image_ids, names=names,
                                 owners=owners, executable_users=executable_users, filters=filters,
                                 include_deprecated=include_deprecated, include_disabled=include_disabled,
                                 caller=caller))
        if key is not None:
            # the answer holds until an image's deprecation time comes (it may then be left out)
            turns = min((info.deprecation_time for info in region_images.infos
                         if info.deprecation_time is not None and info.deprecation_time > now), default=None)
            with _described_lock:
                if len(region_images.answers) >= MAX_ANSWERS:
                    region_images.answers.clear()
                region_images.answers[key] = (turns, result)
        return result

    if key is None:
        return answer()
    # the answers dict is the region state's (held by every caller waiting here): its id names that state
    return _answering.run((id(region_images.answers), key), answer)


MAX_ANSWERS = 256  # DescribeImages answers kept per region and store state
_answering: Flights[tuple[ImageInfo, ...]] = Flights()


def _describe(
    region: str,
    infos: list[ImageInfo],
    now: datetime,
    *,
    image_ids: list[str] | None,
    names: list[str] | None,
    owners: list[str] | None,
    executable_users: list[str] | None,
    filters: dict[str, list[str]] | None,
    include_deprecated: bool,
    include_disabled: bool,
    caller: Principal | None,
) -> list[ImageInfo]:
    """:func:`describe_images` over the region's images ``infos`` at ``now``."""
    filters = dict(filters or {})
    if names:
        filters["name"] = [*filters.get("name", []), *names]
    me = caller or Principal(DEFAULT_ACCOUNT)
    owner_scope = OwnerScope.parse(owners, me.account) if owners else None
    executable = ExecutableScope.parse(executable_users, me.account) if executable_users else None
    states = filters.get("state", [])
    if image_ids:
        wanted = set(image_ids)
        infos = [info for info in infos if info.id in wanted]
    mine = caller.account if caller is not None else None
    if caller is not None:
        infos = [
            info if info.owner_id == mine else info.seen_by(mine)
            for info in infos
            if info.owner_id == mine or caller.may_launch(info.owner_id, info.launch_permissions)
        ]
    if image_ids:
        missing = sorted(set(image_ids) - {i.id for i in infos if i.state != "deregistered" or states})
        if missing:
            raise InvalidAMIIDNotFound(*missing).at(account=mine, region=region)
    show_deregistered = _match("deregistered", states)
    show_disabled = include_disabled or _match("disabled", states)
    show_deprecated = include_deprecated or bool(image_ids)
    result = []
    for info in infos:
        state = info.state
        if (state == "deregistered" and not show_deregistered) or (state == "disabled" and not show_disabled):
            continue
        deprecated_at = info.deprecation_time
        if deprecated_at is not None and deprecated_at <= now and not (show_deprecated or info.owner_id == mine):
            continue
        if owner_scope is not None and not owner_scope.matches(info.owner_id, info.owner_alias):
            continue
        if executable is not None and not executable.matches(info.launch_permissions, me):
            continue
        if not filters or all(_matches(info, key, values) for key, values in filters.items()):
            result.append(info)
    return result


def get_image(ami_id: str, region: str = "local", caller: Principal | None = None) -> ImageInfo:
    """One AMI in any state, as ``caller`` sees it (``InvalidAMIID.NotFound`` if it may not)."""
    with session() as db:
        return to_info(db, image_for(db, ami_id, region, caller)).seen_by(caller and caller.account)


def new_image_id() -> str:
    return new_id("ami")
