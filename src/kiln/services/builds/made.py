"""What a build's distribution has made so far (``distribution_outputs``), written before and after
each AMI copy and disk export, so that clean-up — after a failure, or at the next start after the
process died — knows everything it has to remove.

A row is written MAKING before the work starts (for an export with its final path; for an AMI copy
without an id, which exists only once the copy is registered) and MADE with the resource once done.
An AMI registered in the instant between its registration and its MADE row is still found: every
AMI a build makes carries the build's ``Ec2ImageBuilderArn`` tag.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.distribution import DistributionOutput

AMI, EXPORT = "ami", "export"


@dataclass(frozen=True)
class Made:
    kind: str
    region: str
    account_id: str
    resource: str | None
    status: str


def begin(image_arn: str, kind: str, region: str, account_id: str, resource: str | None = None) -> int:
    with session() as db:
        row = DistributionOutput(image_arn=image_arn, kind=kind, region=region, account_id=account_id,
                                 resource=resource, status="MAKING", created_at=utcnow())
        db.add(row)
        db.flush()
        return row.id


def done(row_id: int, resource: str) -> None:
    with session() as db:
        row = db.get(DistributionOutput, row_id)
        if row is not None:
            row.resource, row.status = resource, "MADE"


def made_by(image_arn: str) -> list[Made]:
    with session() as db:
        rows = db.scalars(select(DistributionOutput).where(DistributionOutput.image_arn == image_arn)
                          .order_by(DistributionOutput.id))
        return [Made(r.kind, r.region, r.account_id, r.resource, r.status) for r in rows]


def forget(image_arn: str) -> None:
    with session() as db:
        db.execute(delete(DistributionOutput).where(DistributionOutput.image_arn == image_arn))
