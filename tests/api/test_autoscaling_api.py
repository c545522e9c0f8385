"""Auto Scaling (query protocol) against ``kiln serve`` with boto3: groups and instance refreshes as
the signing account in the signing region, the service's error codes, paging by MaxRecords."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server


def _error(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


@pytest.fixture
def template(busybox_dir: Path) -> str:
    from kiln.services.fleet.launch_templates import create_launch_template
    from kiln.store import api

    ami = api.import_rootfs(busybox_dir, name="golden-web")
    return str(create_launch_template("web", {"ImageId": ami})["LaunchTemplate"]["LaunchTemplateId"])


def test_groups_and_refreshes_over_the_wire(server: Server, template: str) -> None:
    asg = server.client("autoscaling")
    for n in range(3):
        asg.create_auto_scaling_group(
            AutoScalingGroupName=f"web-{n}", MinSize=0, MaxSize=2, DesiredCapacity=0,
            LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
            Tags=[{"Key": "team", "Value": "web", "PropagateAtLaunch": True}])
    assert _error(asg.create_auto_scaling_group, AutoScalingGroupName="web-0", MinSize=0, MaxSize=1,
                  LaunchTemplate={"LaunchTemplateName": "web"})[:2] == ("AlreadyExists", 400)
    assert _error(asg.create_auto_scaling_group, AutoScalingGroupName="bad", MinSize=3, MaxSize=2,
                  LaunchTemplate={"LaunchTemplateName": "web"}) == (
        "ValidationError", 400, "MaxSize: Max bound, 2, must be greater than or equal to min bound, 3")
    code, status, message = _error(asg.create_auto_scaling_group, AutoScalingGroupName="bad", MinSize=0, MaxSize=1,
                                   LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Latest"},
                                   LaunchConfigurationName="old")
    assert (code, status) == ("ValidationError", 400) and "LaunchConfigurationName" in message

    first = asg.describe_auto_scaling_groups(MaxRecords=2)
    assert [g["AutoScalingGroupName"] for g in first["AutoScalingGroups"]] == ["web-0", "web-1"]
    rest = asg.describe_auto_scaling_groups(MaxRecords=2, NextToken=first["NextToken"])
    assert [g["AutoScalingGroupName"] for g in rest["AutoScalingGroups"]] == ["web-2"]
    group = first["AutoScalingGroups"][0]
    assert group["LaunchTemplate"] == {"LaunchTemplateId": template, "LaunchTemplateName": "web", "Version": "1"}
    assert group["AutoScalingGroupARN"].startswith("arn:aws:autoscaling:local:123456789012:autoScalingGroup:")
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=["nope"])["AutoScalingGroups"] == []

    asg.update_auto_scaling_group(AutoScalingGroupName="web-0", MaxSize=3)
    asg.set_desired_capacity(AutoScalingGroupName="web-0", DesiredCapacity=3)
    assert _error(asg.set_desired_capacity, AutoScalingGroupName="web-0", DesiredCapacity=4)[2] == (
        "DesiredCapacity: New SetDesiredCapacity value 4 is above max value 3 for the AutoScalingGroup.")
    assert _error(asg.set_desired_capacity, AutoScalingGroupName="nope", DesiredCapacity=1)[:2] == (
        "ValidationError", 400)

    refresh_id = asg.start_instance_refresh(AutoScalingGroupName="web-1",
                                            Preferences={"MinHealthyPercentage": 66})["InstanceRefreshId"]
    assert _error(asg.start_instance_refresh, AutoScalingGroupName="web-1")[:2] == ("InstanceRefreshInProgress", 400)
    assert _error(asg.delete_auto_scaling_group, AutoScalingGroupName="web-1")[:2] == (
        "ScalingActivityInProgress", 400)
    [refresh] = asg.describe_instance_refreshes(AutoScalingGroupName="web-1")["InstanceRefreshes"]
    assert (refresh["InstanceRefreshId"], refresh["Status"], refresh["Preferences"]["MinHealthyPercentage"]) == (
        refresh_id, "Pending", 66)
    assert asg.cancel_instance_refresh(AutoScalingGroupName="web-1")["InstanceRefreshId"] == refresh_id
    assert _error(asg.cancel_instance_refresh, AutoScalingGroupName="web-1")[:2] == (
        "ActiveInstanceRefreshNotFound", 400)
    asg.delete_auto_scaling_group(AutoScalingGroupName="web-1")
    assert [g["AutoScalingGroupName"] for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]] == [
        "web-0", "web-2"]


def test_another_account_sees_none_of_the_groups(server: Server, template: str) -> None:
    from kiln.services.accounts.accounts import create_access_key, create_account

    server.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="web", MinSize=0, MaxSize=1, LaunchTemplate={"LaunchTemplateName": "web"})
    create_account("peer", account_id="210987654321")
    peer = server.client("autoscaling", key=create_access_key("210987654321"))
    assert peer.describe_auto_scaling_groups()["AutoScalingGroups"] == []
    code, _, message = _error(peer.create_auto_scaling_group, AutoScalingGroupName="web", MinSize=0, MaxSize=1,
                              LaunchTemplate={"LaunchTemplateId": template})
    assert code == "ValidationError" and "does not exist" in message  # the template is the owner's alone
