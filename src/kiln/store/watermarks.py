"""AMI watermarks (EC2 ``AttachImageWatermark``/``DetachImageWatermark``) and their inheritance.

A watermark's key is ``<owner account>:<name>``; it records the AMI it was first attached to (its id,
region and creation time) and when. Every AMI made from a marked one — CreateImage from an instance
launched from it (a build's output AMI too), CopyImage within or across regions and accounts — gets a
copy with the same key and source fields, so a lineage cannot be claimed by naming an image alike.
Only the owner attaches or detaches; a public AMI cannot be marked and a marked AMI cannot be made
public; at most five per AMI. Detaching removes the mark from that AMI only, never from images already
made from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.store import StoreLaunchPermission, StoreWatermark
from kiln.ec2_errors import InvalidParameterValue
from kiln.model.sharing import Principal
from kiln.store.access import image_for
from kiln.store.times import ec2_time

MAX_PER_IMAGE = 5
NAME = re.compile(r"^[A-Za-z0-9 ()\[\]./\-'@_]{3,128}$")


@dataclass(frozen=True)
class Watermark:
    key: str
    source_image_id: str
    source_image_region: str
    source_image_creation_time: datetime
    watermark_creation_time: datetime

    def to_ec2(self) -> dict[str, str | None]:
        """EC2's ``ImageWatermark`` shape."""
        return {
            "WatermarkKey": self.key,
            "SourceImageId": self.source_image_id,
            "SourceImageRegion": self.source_image_region,
            "SourceImageCreationTime": ec2_time(self.source_image_creation_time),
            "WatermarkCreationTime": ec2_time(self.watermark_creation_time),
        }


def _of(row: StoreWatermark) -> Watermark:
    return Watermark(row.key, row.source_image_id, row.source_image_region, row.source_image_creation_time,
                     row.watermark_creation_time)


def watermarks_by_image(db: Session, image_ids: select | list[str]) -> dict[str, list[Watermark]]:  # type: ignore[type-arg]
    """The watermarks of the given images (a list of ids or a select of ids), by image, in key order."""
    found: dict[str, list[Watermark]] = {}
    query = select(StoreWatermark).where(StoreWatermark.image_id.in_(image_ids))
    for row in db.scalars(query.order_by(StoreWatermark.image_id, StoreWatermark.key)):
        found.setdefault(row.image_id, []).append(_of(row))
    return found


def inherit(db: Session, source_image_id: str, image_id: str) -> None:
    """Give ``image_id`` (just added to ``db``) a copy of every watermark of the image it was made from."""
    rows = list(db.scalars(select(StoreWatermark).where(StoreWatermark.image_id == source_image_id)))
    if rows:
        db.flush()  # the new image's row first: the copies reference it
    for row in rows:
        db.add(StoreWatermark(
            image_id=image_id, key=row.key, source_image_id=row.source_image_id,
            source_image_region=row.source_image_region,
            source_image_creation_time=row.source_image_creation_time,
            watermark_creation_time=row.watermark_creation_time,
        ))


def is_marked(db: Session, image_id: str) -> bool:
    return db.scalar(select(StoreWatermark.key).where(StoreWatermark.image_id == image_id).limit(1)) is not None


def _is_public(db: Session, image_id: str) -> bool:
    query = select(StoreLaunchPermission.value).where(
        StoreLaunchPermission.image_id == image_id, StoreLaunchPermission.kind == "Group",
        StoreLaunchPermission.value == "all",
    )
    return db.scalar(query) is not None


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidParameterValue(
            "a watermark name is 3-128 letters, digits, spaces and ( ) [ ] . / - ' @ _", location="WatermarkName"
        )


def attach(ami_id: str, name: str, region: str = "local", caller: Principal | None = None) -> str:
    """Mark the caller's AMI; returns the key. Attaching a name already there changes nothing."""
    check_name(name)
    with session() as db:
        row = image_for(db, ami_id, region, caller, "own")
        key = f"{row.owner_id}:{name}"
        if db.get(StoreWatermark, (ami_id, key)) is not None:
            return key
        if _is_public(db, ami_id):
            raise InvalidParameterValue(f"{ami_id} is public; a public AMI cannot carry a watermark",
                                        location="ImageId")
        count = len(db.scalars(select(StoreWatermark.key).where(StoreWatermark.image_id == ami_id)).all())
        if count >= MAX_PER_IMAGE:
            raise InvalidParameterValue(f"{ami_id} already has {MAX_PER_IMAGE} watermarks, the most an AMI may "
                                        "carry", location="WatermarkName")
        db.add(StoreWatermark(
            image_id=ami_id, key=key, source_image_id=ami_id, source_image_region=row.region,
            source_image_creation_time=row.creation_date, watermark_creation_time=utcnow(),
        ))
    return key


def detach(ami_id: str, key: str, region: str = "local", caller: Principal | None = None) -> None:
    """Remove a watermark from the caller's AMI; a key it does not carry is not an error."""
    with session() as db:
        image_for(db, ami_id, region, caller, "own")
        db.execute(delete(StoreWatermark).where(StoreWatermark.image_id == ami_id, StoreWatermark.key == key))


def spread(source_image_id: str, key: str, image_ids: list[str]) -> list[str]:
    """Give each of ``image_ids`` that still exists a copy of ``source_image_id``'s watermark ``key``, as if
    inherited from it (an image build's later decision reaching the AMIs it already made); returns the
    images that got one. Images carrying the key already, or gone, are left alone."""
    from kiln.db.tables.store import StoreImage

    marked = []
    with session() as db:
        row = db.get(StoreWatermark, (source_image_id, key))
        if row is None:
            return marked
        for image_id in image_ids:
            if db.get(StoreImage, image_id) is None or db.get(StoreWatermark, (image_id, key)) is not None:
                continue
            db.add(StoreWatermark(
                image_id=image_id, key=row.key, source_image_id=row.source_image_id,
                source_image_region=row.source_image_region,
                source_image_creation_time=row.source_image_creation_time,
                watermark_creation_time=row.watermark_creation_time,
            ))
            marked.append(image_id)
    return marked


def drop_marks_of(image_id: str, source_image_id: str) -> None:
    """Remove from ``image_id`` the watermarks first attached to ``source_image_id`` (a copy made to stand
    in for a new build keeps only what the new build would have inherited)."""
    with session() as db:
        db.execute(delete(StoreWatermark).where(StoreWatermark.image_id == image_id,
                                                StoreWatermark.source_image_id == source_image_id))
