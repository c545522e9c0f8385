"""Two accounts, each with its own access key, against one ``kiln serve``: every EC2 call acts as the
account that signed it, so the sharing rules of the image store hold on the wire — a private AMI is
invisible to another account, only its owner may change it, launching needs a launch permission
(DryRun included), and an instance belongs to the account that launched it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server


@pytest.fixture
def ami(kiln_home: Path, busybox_dir: Path) -> str:
    """A busybox AMI of the default account (account A)."""
    from kiln.store import api

    return api.import_rootfs(busybox_dir, name="busybox-base")


@pytest.fixture
def other(server: Server) -> tuple[str, Any]:
    """Account B: its id and an EC2 client signed with its own key."""
    from kiln.services.accounts.accounts import create_access_key, create_account

    account_id = create_account("account-b")["Id"]
    return account_id, server.client("ec2", key=create_access_key(account_id))


def _error(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"], error.get("Message", "")


def test_a_private_ami_is_invisible_to_another_account(server: Server, ami: str, other: tuple[str, Any]) -> None:
    _, b = other
    a = server.client("ec2")
    assert [i["ImageId"] for i in a.describe_images()["Images"]] == [ami]
    assert b.describe_images()["Images"] == []
    assert b.describe_images(Owners=["123456789012"])["Images"] == []
    assert b.describe_images(ExecutableUsers=["self"])["Images"] == []
    assert _error(b.describe_images, ImageIds=[ami])[:2] == ("InvalidAMIID.NotFound", 400)
    assert _error(b.describe_image_attribute, ImageId=ami, Attribute="description")[0] == "InvalidAMIID.NotFound"
    assert _error(b.deregister_image, ImageId=ami)[0] == "InvalidAMIID.NotFound"
    assert _error(b.create_tags, Resources=[ami], Tags=[{"Key": "k", "Value": "v"}])[0] == "InvalidID"
    assert b.describe_tags()["Tags"] == []
    assert b.describe_snapshots()["Snapshots"] == []
    assert [i["ImageId"] for i in a.describe_images(ImageIds=[ami])["Images"]] == [ami]  # A still sees it


def test_a_shared_ami_is_seen_but_only_its_owner_changes_it(server: Server, ami: str,
                                                             other: tuple[str, Any]) -> None:
    b_id, b = other
    a = server.client("ec2")
    a.create_tags(Resources=[ami], Tags=[{"Key": "team", "Value": "web"},
                                         {"Key": "ec2:SharedTag/stage", "Value": "prod"}])
    a.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": b_id}]})

    [seen] = b.describe_images()["Images"]
    assert (seen["ImageId"], seen["OwnerId"]) == (ami, "123456789012")
    assert {t["Key"] for t in seen.get("Tags", [])} == {"ec2:SharedTag/stage"}  # grantees see shared tags only
    assert [i["ImageId"] for i in b.describe_images(ImageIds=[ami])["Images"]] == [ami]
    assert [i["ImageId"] for i in b.describe_images(ExecutableUsers=["self"])["Images"]] == [ami]
    assert b.describe_images(Owners=["self"])["Images"] == []
    assert {(t["ResourceId"], t["Key"]) for t in b.describe_tags()["Tags"]} == {(ami, "ec2:SharedTag/stage")}

    code, status, message = _error(b.modify_image_attribute, ImageId=ami,
                                   LaunchPermission={"Add": [{"Group": "all"}]})
    assert (code, status) == ("AuthFailure", 401) and ami in message
    assert _error(b.modify_image_attribute, ImageId=ami, LaunchPermission={"Add": [{"Group": "all"}]},
                  DryRun=True)[0] == "AuthFailure"
    assert _error(b.deregister_image, ImageId=ami)[:2] == ("AuthFailure", 401)
    assert _error(b.deregister_image, ImageId=ami, DryRun=True)[0] == "AuthFailure"
    assert _error(b.disable_image, ImageId=ami)[0] == "AuthFailure"
    soon = datetime.now(UTC) + timedelta(days=30)
    assert _error(b.enable_image_deprecation, ImageId=ami, DeprecateAt=soon)[0] == "AuthFailure"
    assert _error(b.describe_image_attribute, ImageId=ami, Attribute="launchPermission")[0] == "AuthFailure"
    assert _error(b.create_tags, Resources=[ami], Tags=[{"Key": "k", "Value": "v"}])[0] == "AuthFailure"
    assert _error(b.delete_tags, Resources=[ami], Tags=[{"Key": "team"}])[0] == "AuthFailure"
    assert a.describe_images(ImageIds=[ami])["Images"][0]["Public"] is False  # B's changes did nothing
    assert {t["Key"] for t in a.describe_images(ImageIds=[ami])["Images"][0]["Tags"]} == {
        "team", "ec2:SharedTag/stage"}

    a.modify_image_attribute(ImageId=ami, LaunchPermission={"Remove": [{"UserId": b_id}]})
    assert b.describe_images()["Images"] == []
    assert _error(b.describe_images, ImageIds=[ami])[0] == "InvalidAMIID.NotFound"


def test_dry_run_of_a_launch_needs_the_launch_permission(server: Server, ami: str, other: tuple[str, Any]) -> None:
    b_id, b = other
    a = server.client("ec2")
    code, status, message = _error(b.run_instances, ImageId=ami, MinCount=1, MaxCount=1, DryRun=True)
    assert (code, status) == ("AuthFailure", 401) and f"Not authorized for images: [{ami}]" in message
    assert _error(b.run_instances, ImageId=ami, MinCount=1, MaxCount=1)[0] == "AuthFailure"
    assert _error(b.copy_image, SourceImageId=ami, SourceRegion="local", Name="stolen", DryRun=True)[0] == \
        "InvalidAMIID.NotFound"
    assert _error(a.run_instances, ImageId=ami, MinCount=1, MaxCount=1, DryRun=True)[:2] == ("DryRunOperation", 412)
    a.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": b_id}]})
    assert _error(b.run_instances, ImageId=ami, MinCount=1, MaxCount=1, DryRun=True)[:2] == ("DryRunOperation", 412)


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")
def test_instances_belong_to_the_account_that_launched_them(server: Server, ami: str,
                                                             other: tuple[str, Any]) -> None:
    b_id, b = other
    a = server.client("ec2")
    mine = a.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    a.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": b_id}]})
    reservation = b.run_instances(ImageId=ami, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "b-1"}]}])
    assert reservation["OwnerId"] == b_id
    theirs = reservation["Instances"][0]["InstanceId"]
    try:
        assert [i["InstanceId"] for r in b.describe_instances()["Reservations"] for i in r["Instances"]] == [theirs]
        assert [i["InstanceId"] for r in a.describe_instances()["Reservations"] for i in r["Instances"]] == [mine]
        assert _error(b.describe_instances, InstanceIds=[mine])[0] == "InvalidInstanceID.NotFound"
        assert _error(b.stop_instances, InstanceIds=[mine])[0] == "InvalidInstanceID.NotFound"
        assert _error(b.terminate_instances, InstanceIds=[mine], DryRun=True)[0] == "InvalidInstanceID.NotFound"
        assert _error(b.get_console_output, InstanceId=mine)[0] == "InvalidInstanceID.NotFound"
        assert _error(b.create_image, InstanceId=mine, Name="not-mine")[0] == "InvalidInstanceID.NotFound"
        assert [t["ResourceId"] for t in b.describe_tags(Filters=[{"Name": "resource-type", "Values": ["instance"]}])
                ["Tags"]] == [theirs]
        assert a.describe_tags(Filters=[{"Name": "resource-id", "Values": [theirs]}])["Tags"] == []

        captured = b.create_image(InstanceId=theirs, Name="b-captured")["ImageId"]
        assert b.describe_images(ImageIds=[captured])["Images"][0]["OwnerId"] == b_id
        assert _error(a.describe_images, ImageIds=[captured])[0] == "InvalidAMIID.NotFound"
    finally:
        b.terminate_instances(InstanceIds=[theirs])
        a.terminate_instances(InstanceIds=[mine])
    assert a.describe_instances(InstanceIds=[mine])["Reservations"][0]["Instances"][0]["State"]["Name"] == "terminated"


def test_snapshot_permissions_over_the_wire(server: Server, ami: str, other: tuple[str, Any]) -> None:
    b_id, b_ec2 = other
    ec2 = server.client("ec2")
    snapshot = ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert _error(b_ec2.describe_snapshot_attribute, SnapshotId=snapshot,
                  Attribute="createVolumePermission")[0] == "InvalidSnapshot.NotFound"
    code, _, _ = _error(ec2.modify_snapshot_attribute, SnapshotId=snapshot, Attribute="createVolumePermission",
                        OperationType="add", UserIds=[b_id], DryRun=True)
    assert code == "DryRunOperation"
    assert ec2.describe_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == []  # the dry run changed nothing
    ec2.modify_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission",
                                  CreateVolumePermission={"Add": [{"UserId": b_id}]})
    assert ec2.describe_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == [{"UserId": b_id}]
    assert [s["SnapshotId"] for s in b_ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]] == [snapshot]
    code, _, _ = _error(b_ec2.modify_snapshot_attribute, SnapshotId=snapshot, Attribute="createVolumePermission",
                        OperationType="add", GroupNames=["all"])
    assert code == "AuthFailure"  # B sees the snapshot now, but only its owner changes who may
    ec2.reset_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")
    assert ec2.describe_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == []
