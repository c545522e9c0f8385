"""boto3's EC2 client against ``kiln serve``: the ec2 protocol (form input, XML answers) over the image
store — images, launch permissions, snapshots, tags, deprecation, disabling, deregistration protection,
copies, DryRun, paging and EC2's error envelope."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server, raw
from tests.api.wire import EC2_NS, error_code

OTHER = "210987654321"


@pytest.fixture
def ami(kiln_home: Path, busybox_dir: Path) -> str:
    from kiln.store import api

    return api.import_rootfs(busybox_dir, name="busybox-base")


def _code(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_describe_images_with_filters_owners_and_executable_users(server: Server, ami: str) -> None:
    ec2 = server.client("ec2")
    [image] = ec2.describe_images(Owners=["self"])["Images"]
    assert (image["ImageId"], image["Name"], image["State"], image["OwnerId"]) == (
        ami, "busybox-base", "available", "123456789012")
    snapshot = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert isinstance(image["Public"], bool) and image["RootDeviceType"] == "ebs"
    assert [i["ImageId"] for i in ec2.describe_images(Filters=[{"Name": "name", "Values": ["busybox-*"]}])["Images"]] \
        == [ami]
    assert ec2.describe_images(Filters=[{"Name": "name", "Values": ["nginx-*"]}])["Images"] == []
    assert ec2.describe_images(Owners=[OTHER])["Images"] == []
    assert _code(ec2.describe_images, Owners=["someone"]) == ("InvalidUserID.Malformed", 400)
    assert _code(ec2.describe_images, Filters=[{"Name": "colour", "Values": ["red"]}]) == ("InvalidParameterValue", 400)
    assert _code(ec2.describe_images, ImageIds=["ami-0123456789abcdef0"]) == ("InvalidAMIID.NotFound", 400)

    ec2.create_tags(Resources=[ami, snapshot], Tags=[{"Key": "team", "Value": "web"}])
    assert [i["ImageId"] for i in ec2.describe_images(Filters=[{"Name": "tag:team", "Values": ["web"]}])["Images"]] \
        == [ami]

    assert ec2.describe_images(ExecutableUsers=[OTHER])["Images"] == []
    ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": OTHER}]})
    assert ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"] == [
        {"UserId": OTHER}]
    assert [i["ImageId"] for i in ec2.describe_images(ExecutableUsers=[OTHER])["Images"]] == [ami]
    assert ec2.describe_images(ExecutableUsers=["all"])["Images"] == []
    ec2.modify_image_attribute(ImageId=ami, Attribute="launchPermission", OperationType="add", UserGroups=["all"])
    assert [i["ImageId"] for i in ec2.describe_images(ExecutableUsers=["all"])["Images"]] == [ami]
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["Public"] is True
    ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Remove": [{"Group": "all"}, {"UserId": OTHER}]})
    assert ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"] == []
    # EC2 answers a malformed account id in a grant with InvalidAMIAttributeItemValue (fleet-and-sharing.md, 1)
    assert _code(ec2.modify_image_attribute, ImageId=ami, LaunchPermission={"Add": [{"UserId": "12"}]})[0] == \
        "InvalidAMIAttributeItemValue"

    attribute = ec2.describe_image_attribute(ImageId=ami, Attribute="deregistrationProtection")
    assert attribute["DeregistrationProtection"] == {"Value": "disabled"}
    assert ec2.describe_image_attribute(ImageId=ami, Attribute="description")["ImageId"] == ami


def test_image_lifecycle_calls(server: Server, ami: str) -> None:
    ec2 = server.client("ec2")
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    assert ec2.enable_image_deprecation(ImageId=ami, DeprecateAt=later)["Return"] is True
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["DeprecationTime"].startswith(later.strftime("%Y-%m-%dT"))
    assert ec2.disable_image_deprecation(ImageId=ami)["Return"] is True
    assert "DeprecationTime" not in ec2.describe_images(ImageIds=[ami])["Images"][0]

    assert ec2.disable_image(ImageId=ami)["Return"] is True
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"][0]["State"] == "disabled"
    assert ec2.enable_image(ImageId=ami)["Return"] is True

    assert ec2.enable_image_deregistration_protection(ImageId=ami)["Return"] == "enabled"
    assert _code(ec2.deregister_image, ImageId=ami) == ("InvalidParameterValue", 400)
    assert ec2.disable_image_deregistration_protection(ImageId=ami)["Return"] == "disabled"

    ec2.create_tags(Resources=[ami], Tags=[{"Key": "team", "Value": "web"}])
    copy = ec2.copy_image(SourceImageId=ami, SourceRegion="local", Name="busybox-copy", CopyImageTags=True,
                          TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "copy", "Value": "yes"}]}])
    [copied] = ec2.describe_images(ImageIds=[copy["ImageId"]])["Images"]
    assert {t["Key"]: t["Value"] for t in copied["Tags"]} == {"team": "web", "copy": "yes"}
    assert copied["SourceImageId"] == ami

    snapshot = ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]] == [snapshot]
    assert _code(ec2.delete_snapshot, SnapshotId=snapshot) == ("InvalidSnapshot.InUse", 400)
    assert _code(ec2.describe_snapshots, SnapshotIds=["snap-0123456789abcdef0"]) == ("InvalidSnapshot.NotFound", 400)

    gone = ec2.deregister_image(ImageId=ami, DeleteAssociatedSnapshots=True)
    assert gone["Return"] is True
    assert [r["SnapshotId"] for r in gone["DeleteSnapshotResults"]] == [snapshot]
    assert ec2.describe_images(ImageIds=[copy["ImageId"]])["Images"][0]["State"] == "available"
    kept = ec2.deregister_image(ImageId=copy["ImageId"])
    assert kept["Return"] is True and "DeleteSnapshotResults" not in kept
    orphans = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    for orphan in orphans:
        ec2.delete_snapshot(SnapshotId=orphan["SnapshotId"])
    assert ec2.describe_snapshots()["Snapshots"] == []


def test_tags(server: Server, ami: str) -> None:
    ec2 = server.client("ec2")
    ec2.create_tags(Resources=[ami], Tags=[{"Key": "team", "Value": "web"}, {"Key": "tier", "Value": "gold"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [ami]}])["Tags"]
    assert sorted((t["Key"], t["Value"], t["ResourceType"]) for t in tags) == [
        ("team", "web", "image"), ("tier", "gold", "image")]
    ec2.delete_tags(Resources=[ami], Tags=[{"Key": "team", "Value": "not-web"}])  # a value must match
    assert len(ec2.describe_tags(Filters=[{"Name": "key", "Values": ["team"]}])["Tags"]) == 1
    ec2.delete_tags(Resources=[ami], Tags=[{"Key": "team"}])
    assert [t["Key"] for t in ec2.describe_tags()["Tags"]] == ["tier"]
    ec2.delete_tags(Resources=[ami])  # no Tag list: all of them
    assert ec2.describe_tags()["Tags"] == []
    assert _code(ec2.create_tags, Resources=["ami-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}]) == (
        "InvalidID", 400)


def test_dry_run_is_412_when_the_call_would_succeed(server: Server, ami: str) -> None:
    ec2 = server.client("ec2")
    snapshot = ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    later = datetime.now(UTC) + timedelta(days=30)
    calls = {
        "DescribeImages": lambda **k: ec2.describe_images(**k),
        "DeregisterImage": lambda **k: ec2.deregister_image(ImageId=ami, **k),
        "CopyImage": lambda **k: ec2.copy_image(SourceImageId=ami, SourceRegion="local", Name="dry", **k),
        "ModifyImageAttribute": lambda **k: ec2.modify_image_attribute(
            ImageId=ami, LaunchPermission={"Add": [{"UserId": OTHER}]}, **k),
        "CreateTags": lambda **k: ec2.create_tags(Resources=[ami], Tags=[{"Key": "a", "Value": "b"}], **k),
        "DisableImage": lambda **k: ec2.disable_image(ImageId=ami, **k),
        "EnableImageDeprecation": lambda **k: ec2.enable_image_deprecation(ImageId=ami, DeprecateAt=later, **k),
        "EnableImageDeregistrationProtection": lambda **k: ec2.enable_image_deregistration_protection(ImageId=ami,
                                                                                                      **k),
        "DescribeSnapshots": lambda **k: ec2.describe_snapshots(**k),
    }
    for name, call in calls.items():
        assert _code(call, DryRun=True) == ("DryRunOperation", 412), name
    [image] = ec2.describe_images(ImageIds=[ami])["Images"]  # nothing happened
    assert (image["State"], image["Tags"], image["DeregistrationProtection"]) == ("available", [], "disabled")
    assert "DeprecationTime" not in image and len(ec2.describe_images()["Images"]) == 1
    # a dry run that would fail says why instead
    assert _code(ec2.deregister_image, ImageId="ami-0123456789abcdef0", DryRun=True) == ("InvalidAMIID.NotFound", 400)
    assert _code(ec2.delete_snapshot, SnapshotId=snapshot, DryRun=True) == ("InvalidSnapshot.InUse", 400)
    ec2.disable_image(ImageId=ami)
    assert _code(ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=1, DryRun=True) == ("InvalidAMIID.Disabled",
                                                                                          400)


def test_paging_by_the_smallest_page_ec2_allows(server: Server, ami: str) -> None:
    from kiln.services.ec2 import images

    for number in range(6):
        images.copy_image(ami, name=f"copy-{number}")
    ec2 = server.client("ec2")
    pages = list(ec2.get_paginator("describe_images").paginate(Owners=["self"], PaginationConfig={"PageSize": 5}))
    assert [len(p["Images"]) for p in pages] == [5, 2]
    assert len({i["ImageId"] for p in pages for i in p["Images"]}) == 7
    assert len(ec2.describe_images()["Images"]) == 7  # without MaxResults: one page
    assert _code(ec2.describe_images, MaxResults=1) == ("InvalidMaxResults", 400)
    assert _code(ec2.describe_images, MaxResults=5, NextToken="garbage") == ("InvalidNextToken", 400)
    token = pages[0]["NextToken"]
    assert _code(ec2.describe_images, MaxResults=5, NextToken=token, Owners=[OTHER]) == ("InvalidNextToken", 400)
    assert _code(ec2.describe_images, MaxResults=5, ImageIds=[ami]) == ("InvalidParameterCombination", 400)

    ec2.create_tags(Resources=[ami], Tags=[{"Key": f"k{n}", "Value": str(n)} for n in range(7)])
    tag_pages = list(ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 5}))
    assert [len(p["Tags"]) for p in tag_pages] == [5, 2]


def test_the_wire_format(server: Server, ami: str) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = f"Action=DescribeImages&Version=2016-11-15&ImageId.1={ami}&Filter.1.Name=state&Filter.1.Value.1=available"
    status, headers, answer = raw(server, "POST", "/", body.encode(), form, service="ec2")
    assert status == 200 and headers["content-type"].startswith("text/xml")
    root = ET.fromstring(answer)
    assert root.tag == f"{{{EC2_NS}}}DescribeImagesResponse"
    assert root.findtext(f"{{{EC2_NS}}}requestId") == headers["x-amzn-requestid"]
    item = root.find(f"{{{EC2_NS}}}imagesSet/{{{EC2_NS}}}item")
    assert item is not None and item.findtext(f"{{{EC2_NS}}}imageId") == ami
    assert item.find(f"{{{EC2_NS}}}blockDeviceMapping/{{{EC2_NS}}}item/{{{EC2_NS}}}ebs/{{{EC2_NS}}}snapshotId") \
        is not None
    status, headers, answer = raw(server, "POST", "/", b"Action=CreateTags&Version=2016-11-15&ResourceId.1=" +
                                  ami.encode() + b"&Tag.1.Key=a&Tag.1.Value=b", form, service="ec2")
    assert status == 200 and ET.fromstring(answer).findtext(f"{{{EC2_NS}}}return") == "true"
    status, headers, answer = raw(server, "GET", f"/?Action=DescribeImageAttribute&Version=2016-11-15&ImageId={ami}"
                                  "&Attribute=description", service="ec2")
    assert status == 200, answer  # EC2 takes GET with the parameters in the query string too
    status, headers, answer = raw(server, "POST", "/", b"Action=DescribeImageAttribute&Version=2016-11-15&ImageId=" +
                                  ami.encode() + b"&Attribute=colour", form, service="ec2")
    assert (status, error_code("ec2", headers, answer)) == (400, "InvalidParameterValue")


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")
def test_instances(server: Server, ami: str) -> None:
    ec2 = server.client("ec2")
    reservation = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web-1"}]}])
    [instance] = reservation["Instances"]
    instance_id = instance["InstanceId"]
    assert reservation["OwnerId"] == "123456789012" and instance["ImageId"] == ami
    assert instance["State"]["Name"] == "running"
    described = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["web-1"]}])["Reservations"]
    assert [i["InstanceId"] for r in described for i in r["Instances"]] == [instance_id]
    assert ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["stopped"]}])["Reservations"] \
        == []
    assert [t["ResourceId"] for t in ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["instance"]}])
            ["Tags"]] == [instance_id]
    assert _code(ec2.stop_instances, InstanceIds=[instance_id], DryRun=True) == ("DryRunOperation", 412)
    stopped = ec2.stop_instances(InstanceIds=[instance_id])["StoppingInstances"][0]
    assert (stopped["PreviousState"]["Name"], stopped["CurrentState"]["Name"]) == ("running", "stopped")
    assert ec2.start_instances(InstanceIds=[instance_id])["StartingInstances"][0]["CurrentState"]["Name"] == "running"
    captured = ec2.create_image(InstanceId=instance_id, Name="web-captured")["ImageId"]
    assert ec2.describe_images(ImageIds=[captured])["Images"][0]["State"] == "available"
    assert _code(ec2.describe_instances, InstanceIds=["i-0123456789abcdef0"]) == ("InvalidInstanceID.NotFound", 400)
    ended = ec2.terminate_instances(InstanceIds=[instance_id])["TerminatingInstances"][0]
    assert ended["CurrentState"]["Name"] == "terminated"
