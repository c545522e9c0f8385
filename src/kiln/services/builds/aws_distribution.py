"""A distribution's ``kiln:AwsPublish`` targets: the region's AMI published to AWS as a real AMI at the
DistributeImage step, through ``kiln image publish --to aws``'s code (EBS direct APIs, RegisterImage,
the target's launch permissions).

- Each target's AMI is recorded in the image's ``outputResources.amis`` with the AWS region and
  account, marked ``kiln:Target: aws`` (so nothing local takes it for one of the store's AMIs).
- Before a publish starts, a ``distribution_outputs`` row (kind ``aws``) says where it goes and how
  to reach it; :func:`discard` (a build that does not finish, now or at the next start) deregisters
  every AMI the publish registered there and deletes its snapshots — the pending one of a publish cut
  short included — and forgets the publication.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from kiln.errors import InvalidInput, KilnError
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
    """Remove what each ``aws`` row's publish left on AWS (see the module's doc); the AMI ids removed."""
    removed: list[str] = []
    for record in records:
        if record.kind == AWS and record.resource:
            with contextlib.suppress(KilnError, ValueError, KeyError):
                removed.extend(_remove(record.region, record.account_id, json.loads(record.resource)))
    return removed


def _remove(region: str, account: str, reach: dict[str, Any]) -> list[str]:
    from kiln.aws import actions
    from kiln.aws.calls import Api
    from kiln.aws.session import Clients, Target
    from kiln.aws.throttle import TokenBucket
    from kiln.services.publishing import records
    from kiln.services.publishing.records import Place

    endpoint = reach.get("endpointUrl")
    clients = Clients(Target(region, reach.get("profile"), endpoint))
    ec2 = Api(clients.client("ec2"), "ec2", TokenBucket(20.0))
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
        with contextlib.suppress(KilnError):
            actions.deregister(ec2, image_id, dry_run=False)
            removed.append(image_id)
    for snapshot_id in sorted(str(snap) for snap in snapshots):
        with contextlib.suppress(KilnError):
            actions.delete_snapshot(ec2, snapshot_id, dry_run=False)
    if publication is not None:
        records.forget(publication.id)
    return removed
