"""A distribution's ``kiln:AwsPublish`` targets: the region's AMI published to AWS as a real AMI at the
DistributeImage step, through ``kiln image publish --to aws``'s code (EBS direct APIs, RegisterImage,
the target's launch permissions).

- Each target's AMI is recorded in the image's ``outputResources.amis`` with the AWS region and
  account, marked ``kiln:Target: aws`` (so nothing local takes it for one of the store's AMIs).
- Before a publish starts, a ``distribution_outputs`` row (kind ``aws``) says where it goes and how
  to reach it; :func:`discard` (a build that does not finish, now or at the next start) deregisters
  every AMI the publish registered there and deletes its snapshots — the pending one of a publish cut
  short included — and forgets the publication; an AWS it cannot reach then is retried later
  (``kiln.services.publishing.removals``).
"""

from __future__ import annotations

import json
from typing import Any

from kiln.errors import InvalidInput
from kiln.model.distribution import AWS_PUBLISH_KEY
from kiln.services.builds import made
from kiln.services.builds.records import PUBLISHED_TARGET

AWS = "aws"


def targets(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return list(entry.get(AWS_PUBLISH_KEY) or [])


def check(entry: dict[str, Any], where: str) -> None:
    """At build start: launch permissions AWS takes (``userGroups`` is ``all`` or nothing)."""
    for number, target in enumerate(targets(entry)):
        groups = (target.get("launchPermission") or {}).get("userGroups") or []
        if any(group != "all" for group in groups):
            raise InvalidInput("an AMI's launch permission group can only be 'all'",
                               location=f"{where}.{AWS_PUBLISH_KEY}[{number}].launchPermission.userGroups")


def publish(image_arn: str, source_ami: str, source_region: str, builder: str, target: dict[str, Any],
            permissions: list[dict[str, str]]) -> dict[str, Any]:
    """Publish ``source_ami`` to the target; its ``outputResources.amis`` entry."""
    from kiln.aws.session import Clients, Target
    from kiln.services.publishing.aws import publish_image

    endpoint = target.get("endpointUrl")
    account = Clients(Target(target["region"], target.get("profile"), endpoint)).account()
    reach = {"profile": target.get("profile"), "endpointUrl": endpoint, "sourceImageId": source_ami,
             "sourceRegion": source_region}
    row = made.begin(image_arn, AWS, target["region"], account, json.dumps(reach))
    result = publish_image(source_ami, region=target["region"], profile=target.get("profile"), endpoint_url=endpoint,
                           source_region=source_region, account=builder, launch_permissions=permissions)
    made.done(row, json.dumps({**reach, "amiId": result["AmiId"], "snapshotId": result["SnapshotId"]}))
    return {"region": result["Region"], "image": result["AmiId"], "accountId": result["AccountId"],
            PUBLISHED_TARGET: AWS, "snapshotId": result["SnapshotId"], "blocksSent": result["BlocksSent"]}


def discard(records: list[made.Made]) -> list[str]:
    """Remove what each ``aws`` row's publish left on AWS (see the module's doc); the AMI ids removed.
    What AWS could not be asked now is kept and retried (``kiln.services.publishing.removals``)."""
    from kiln.services.publishing import removals

    removed: list[str] = []
    for record in records:
        if record.kind == AWS and record.resource:
            try:
                reach = json.loads(record.resource)
            except ValueError:
                continue
            if "sourceImageId" in reach:
                removed += removals.remove("the build that published it did not finish", record.region,
                                           record.account_id, reach) or []
    return removed
