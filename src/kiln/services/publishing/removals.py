"""Removing what kiln published to AWS: the AMIs (deregistered) and their snapshots (deleted, the
pending snapshot of a publish cut short included), then the publication's record.

Every removal is first written to ``publish_removals`` and deleted from it only once AWS has answered
for every AMI and snapshot (removed, or already gone). An AWS that cannot be reached (connection
refused, credentials refused, a 5xx that outlasts the retries) leaves the row, with the error and the
number of attempts, for the scheduler's retry job (:func:`retry_pending`, every 15 minutes while rows
are left) — so a failed build's clean-up or a lifecycle's delete is never forgotten.

Who asks: a build that fails after its distribution published (``builds.aws_distribution.discard``),
and the local lifecycle deregistering an AMI that was published (:func:`remove_published`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.publishing import PublishRemoval
from kiln.errors import KilnError

AWS = "aws"
RETRY_SCHEDULE = "cron(0/15 * * * ? *)"
JOB_KEY = "publishing:aws-removals"
# answers that mean the thing is gone already, or must stay (another AMI still uses the snapshot)
GONE = {"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound", "InvalidSnapshotID.NotFound"}
KEPT = {"InvalidSnapshot.InUse"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Removal:
    id: int
    reason: str
    region: str
    account: str
    reach: dict[str, Any]
    attempts: int
    last_error: str | None


def queue(reason: str, region: str, account: str, reach: dict[str, Any]) -> int:
    """Record a removal to make; ``reach``: profile, endpointUrl, sourceImageId, sourceRegion, amiId,
    snapshotId (any may be missing)."""
    with session() as db:
        row = PublishRemoval(reason=reason[:256], region=region, account=account, reach=json.dumps(reach),
                             attempts=0, created_at=utcnow())
        db.add(row)
        db.flush()
        return row.id


def pending() -> list[Removal]:
    with session() as db:
        return [Removal(r.id, r.reason, r.region, r.account, json.loads(r.reach), r.attempts, r.last_error)
                for r in db.scalars(select(PublishRemoval).order_by(PublishRemoval.id))]


def attempt(removal_id: int) -> list[str] | None:
    """Make one recorded removal: the AMI ids it removed, or None when AWS could not be reached (the
    row stays, with the error)."""
    with session() as db:
        row = db.get(PublishRemoval, removal_id)
        if row is None:
            return []
        region, account, reach = row.region, row.account, json.loads(row.reach)
    try:
        removed = _remove(region, account, reach)
    except KilnError as error:
        with session() as db:
            row = db.get_one(PublishRemoval, removal_id)
            row.attempts += 1
            row.last_error = str(error)
            row.attempted_at = utcnow()
        log.warning("removal %s on AWS %s kept for a retry: %s", removal_id, region, error)
        return None
    with session() as db:
        row = db.get(PublishRemoval, removal_id)
        if row is not None:
            db.delete(row)
    return removed


def remove(reason: str, region: str, account: str, reach: dict[str, Any]) -> list[str] | None:
    """Record the removal and make it now (see :func:`attempt`)."""
    return attempt(queue(reason, region, account, reach))


def remove_published(image_id: str, source_region: str, reason: str) -> list[str]:
    """Every AMI published to AWS from the local AMI ``image_id`` goes, with its snapshots; what AWS
    could not be asked now stays recorded for the retry job. The AMI ids removed now."""
    from kiln.services.publishing import records

    removed: list[str] = []
    for publication in records.of_image(image_id, source_region):
        reach = {"profile": publication.profile, "endpointUrl": publication.endpoint or None,
                 "sourceImageId": image_id, "sourceRegion": source_region,
                 "amiId": publication.remote_image_id, "snapshotId": publication.snapshot_id}
        removed += remove(reason, publication.region, publication.account, reach) or []
    return removed


def retry_pending() -> tuple[list[str], int]:
    """Try every recorded removal again: (AMI ids removed, removals still left)."""
    removed: list[str] = []
    left = 0
    for removal in pending():
        done = attempt(removal.id)
        if done is None:
            left += 1
        else:
            removed += done
    return removed, left


def scheduler_jobs() -> list[Any]:
    """The retry job, while there are removals left."""
    from kiln.schedule.scheduler import Job

    with session() as db:
        if db.scalar(select(PublishRemoval.id).limit(1)) is None:
            return []
    return [Job(key=JOB_KEY, schedule=RETRY_SCHEDULE, timezone="UTC", target=run_due)]


def run_due(key: str, due_iso: str) -> None:
    """In a scheduler worker: every removal left, tried again."""
    removed, left = retry_pending()
    log.info("AWS removals due %s: %d AMIs removed, %d removals left", due_iso, len(removed), left)


def _remove(region: str, account: str, reach: dict[str, Any]) -> list[str]:
    from kiln.aws import actions
    from kiln.aws.calls import Api
    from kiln.aws.errors import AwsError
    from kiln.aws.retry import Backoff
    from kiln.aws.session import Clients, Target
    from kiln.aws.throttle import TokenBucket
    from kiln.services.publishing import records
    from kiln.services.publishing.records import Place

    endpoint = reach.get("endpointUrl")
    clients = Clients(Target(region, reach.get("profile"), endpoint))
    ec2 = Api(clients.client("ec2"), "ec2", TokenBucket(20.0), Backoff(attempts=3, base=0.2, cap=1.0))
    place = Place(AWS, region, account, endpoint or "")
    publication = records.find(reach["sourceImageId"], reach["sourceRegion"], place)
    amis = {reach.get("amiId"), publication.remote_image_id if publication else None} - {None}
    snapshots = {reach.get("snapshotId"), publication.snapshot_id if publication else None} - {None}
    # an AMI registered in the instant before it was recorded still carries the source's tag
    for image in ec2.pages("describe_images", "Images", Owners=["self"], IncludeDeprecated=True,
                           IncludeDisabled=True, Filters=[{"Name": "tag:kiln:SourceImageId",
                                                           "Values": [reach["sourceImageId"]]}]):
        amis.add(image["ImageId"])
        snapshots.update(m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings") or []
                         if (m.get("Ebs") or {}).get("SnapshotId"))
    removed = []
    for image_id in sorted(str(ami) for ami in amis):
        try:
            actions.deregister(ec2, image_id, dry_run=False)
            removed.append(image_id)
        except AwsError as error:
            if error.aws_code not in GONE:
                raise
    for snapshot_id in sorted(str(snap) for snap in snapshots):
        try:
            actions.delete_snapshot(ec2, snapshot_id, dry_run=False)
        except AwsError as error:
            if error.aws_code not in GONE | KEPT:
                raise
    if publication is not None:
        records.forget(publication.id)
    return removed
