"""``kiln snapshot list --orphaned --backend aws`` against moto's server, and the paginated, rate-limited
calls account management makes (``kiln.aws.calls``)."""

from __future__ import annotations

import json

import pytest
from tests.aws.conftest import client
from tests.conftest import Kiln, MotoServer

from kiln.aws.calls import Api
from kiln.aws.throttle import TokenBucket

ACCOUNT = "123456789012"


def test_orphaned_lists_exactly_the_snapshots_no_own_ami_uses(kiln: Kiln, aws: MotoServer) -> None:
    ec2 = client(aws, "ec2")
    volume = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]
    loose = {ec2.create_snapshot(VolumeId=volume, Description=f"loose {i}")["SnapshotId"] for i in range(3)}
    amis = [ec2.register_image(Name=f"app-{i}", RootDeviceName="/dev/xvda")["ImageId"] for i in range(6)]
    images = ec2.describe_images(ImageIds=amis)["Images"]
    snapshot_of = {i["ImageId"]: i["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] for i in images}
    for image_id in amis[:2]:
        ec2.deregister_image(ImageId=image_id)  # as on AWS, its snapshot stays behind
    ec2.disable_image(ImageId=amis[2])  # a disabled AMI still holds its snapshot

    result = kiln("snapshot", "list", "--orphaned", "--backend", "aws", "--region", "us-east-1",
                  "--endpoint-url", aws.endpoint, "--output", "json")
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert (listed["AccountId"], listed["Region"]) == (ACCOUNT, "us-east-1")
    # moto's own public AMIs' snapshots (other owners) are not the account's, so not listed
    assert {s["SnapshotId"] for s in listed["Snapshots"]} == loose | {snapshot_of[i] for i in amis[:2]}
    assert {s["OwnerId"] for s in listed["Snapshots"]} == {ACCOUNT}

    text = kiln("snapshot", "list", "--orphaned", "--backend", "aws", "--region", "us-east-1",
                "--endpoint-url", aws.endpoint)
    assert text.exit_code == 0 and all(snap in text.stdout for snap in loose)  # ids never cut


def test_orphaned_on_aws_refuses_bad_input_in_one_line(kiln: Kiln, aws: MotoServer) -> None:
    result = kiln("snapshot", "list", "--backend", "aws", "--endpoint-url", aws.endpoint)
    assert result.exit_code != 0 and "--orphaned" in result.stderr and "Traceback" not in result.stderr
    result = kiln("snapshot", "list", "--orphaned", "--endpoint-url", aws.endpoint)
    assert result.exit_code != 0 and "--backend aws" in result.stderr
    result = kiln("snapshot", "list", "--orphaned", "--backend", "aws", "--region", "mars-1",
                  "--endpoint-url", aws.endpoint)
    assert result.exit_code != 0 and "mars-1" in result.stderr


def test_pages_follow_every_token_and_every_call_takes_a_token(aws: MotoServer) -> None:
    autoscaling = client(aws, "autoscaling")
    names = {f"lc-{i}" for i in range(5)}
    for name in names:
        autoscaling.create_launch_configuration(LaunchConfigurationName=name, ImageId="ami-12c6146b",
                                                InstanceType="t3.micro")
    bucket = TokenBucket(1000)
    api = Api(autoscaling, "autoscaling", bucket)
    found = {c["LaunchConfigurationName"]
             for c in api.pages("describe_launch_configurations", "LaunchConfigurations", MaxRecords=2)}
    assert found == names
    assert bucket.taken == 3  # pages of 2, 2 and 1


def test_dry_run_is_asked_of_aws_and_changes_nothing(aws: MotoServer) -> None:
    ec2 = client(aws, "ec2")
    image_id = ec2.register_image(Name="dry-one", RootDeviceName="/dev/xvda")["ImageId"]
    api = Api(ec2, "ec2", TokenBucket(1000))
    assert api.mutate("deregister_image", image_id, dry_run=True, ImageId=image_id) is True
    assert [i["ImageId"] for i in ec2.describe_images(ImageIds=[image_id])["Images"]] == [image_id]


def test_a_bucket_refuses_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
