"""Clean-up on AWS that cannot be made now is kept and retried: a failed build's clean-up whose AWS
endpoint is a closed loopback port keeps its removal (and the scheduler's retry job exists while it is
kept); once the endpoint answers again (the same port, in front of moto's server), the retry removes
the AMI and its snapshot and forgets the publication."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from sqlalchemy import func, select
from tests.aws.conftest import client
from tests.aws.proxy import FaultProxy
from tests.conftest import MotoServer

from kiln.db.engine import session
from kiln.db.tables.publishing import Publication
from kiln.services.builds import made
from kiln.services.builds.distribute import discard
from kiln.services.publishing import removals
from kiln.services.publishing.aws import publish_image
from kiln.services.registry import scheduler_jobs

ARN = "arn:aws:imagebuilder:local:123456789012:image/web/1.0.0/1"


def images_and_snapshots(aws: MotoServer) -> tuple[list[str], list[str]]:
    ec2 = client(aws, "ec2")
    amis = [image["ImageId"] for image in ec2.describe_images(Owners=["self"])["Images"]]
    snapshots = [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
                 if any(tag["Key"] == "kiln:SourceImageId" for tag in s.get("Tags") or [])]
    return amis, snapshots


def publications() -> int:
    with session() as db:
        return int(db.scalar(select(func.count()).select_from(Publication)) or 0)


def failed_build() -> None:
    """The image record of a build that failed after its distribution published (what the clean-up reads)."""
    from kiln.db.base import utcnow
    from kiln.db.tables.images import ImageBuild

    with session() as db:
        db.add(ImageBuild(arn=ARN, account="123456789012", name="web", version="1.0.0", build_number=1,
                          recipe_arn="arn:aws:imagebuilder:local:123456789012:image-recipe/web/1.0.0",
                          infrastructure_arn="arn:aws:imagebuilder:local:123456789012:infrastructure-configuration/i",
                          status="FAILED", date_created=utcnow(), date_updated=utcnow(), workflow_execution_id="wf"))


def test_an_unreachable_aws_during_a_failed_builds_clean_up_is_retried(aws: MotoServer, base_ami: str) -> None:
    with FaultProxy(aws.endpoint) as proxy:
        published = publish_image(base_ami, region="us-east-1", endpoint_url=proxy.endpoint)
        port = urlsplit(proxy.endpoint).port
        assert port is not None
    # what the build's distribution recorded of its publish
    failed_build()
    reach = {"profile": None, "endpointUrl": proxy.endpoint, "sourceImageId": base_ami, "sourceRegion": "local",
             "amiId": published["AmiId"], "snapshotId": published["SnapshotId"]}
    row = made.begin(ARN, "aws", "us-east-1", published["AccountId"], json.dumps(reach))
    made.done(row, json.dumps(reach))

    assert discard(ARN, "local") == []  # the proxy's port is closed now: AWS cannot be reached
    [kept] = removals.pending()
    assert kept.attempts == 1 and kept.last_error and kept.reach["amiId"] == published["AmiId"]
    assert made.made_by(ARN) == []  # the build's own record is done with; the removal is kept apart
    assert images_and_snapshots(aws) == ([published["AmiId"]], [published["SnapshotId"]])
    assert removals.JOB_KEY in {job.key for job in scheduler_jobs()}
    assert removals.retry_pending() == ([], 1)  # still closed: kept again
    assert removals.pending()[0].attempts == 2

    with FaultProxy(aws.endpoint, port=port):  # AWS answers again at the same place
        due = next(job for job in scheduler_jobs() if job.key == removals.JOB_KEY)
        due.target(due.key, "2026-12-06T20:15:00Z")  # the scheduler's retry job, as a worker runs it
    assert removals.pending() == []
    assert images_and_snapshots(aws) == ([], [])
    assert publications() == 0
    assert removals.JOB_KEY not in {job.key for job in scheduler_jobs()}
