"""``kiln lifecycle preview|run --backend aws`` against moto's server: a kiln policy applied to 500 AMIs
of the account, with instances, launch templates (one through ``resolve:ssm:``) and Auto Scaling groups
keeping some in use. Moto gives every registered AMI a snapshot of its own (see the README's gaps), so
a snapshot shared by two AMIs is checked on the planner with AWS-shaped data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.aws.conftest import client
from tests.conftest import Kiln, MotoServer

from kiln.aws.inventory import Ami
from kiln.model.lifecycle import LifecyclePolicy
from kiln.services.aws_accounts import lifecycle
from kiln.services.lifecycle.rules import evaluate

AS_OF = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def policy_body(**selection: Any) -> dict[str, Any]:
    return {
        "name": "retire-web",
        "executionRole": "arn:aws:iam::123456789012:role/lifecycle",
        "resourceType": "AMI_IMAGE",
        "policyDetails": [{
            "action": {"type": "DELETE", "includeResources": {"amis": True, "snapshots": True}},
            "filter": {"type": "AGE", "value": 7, "unit": "DAYS"},
            "exclusionRules": {"tagMap": {"keep": "true"}},
        }],
        "resourceSelection": selection or {"tagMap": {"team": "web"}},
    }  # fmt: skip


def create_policy(kiln: Kiln, tmp_path: Path, body: dict[str, Any]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(body))
    result = kiln("lifecycle", "create", "--cli-input-yaml", str(path))
    assert result.exit_code == 0, result.stderr


class World:
    """500 AMIs: 480 tagged team=web (every tenth also keep=true), 20 others; references to some."""

    def __init__(self, aws: MotoServer) -> None:
        ec2, ssm, asg = client(aws, "ec2"), client(aws, "ssm"), client(aws, "autoscaling")
        self.web = [ec2.register_image(Name=f"web-{i:03d}", RootDeviceName="/dev/xvda")["ImageId"]
                    for i in range(480)]
        self.other = [ec2.register_image(Name=f"other-{i:03d}", RootDeviceName="/dev/xvda")["ImageId"]
                      for i in range(20)]
        ec2.create_tags(Resources=self.web, Tags=[{"Key": "team", "Value": "web"}])
        self.kept = self.web[::10]
        ec2.create_tags(Resources=self.kept, Tags=[{"Key": "keep", "Value": "true"}])
        web = self.web
        running = [ec2.run_instances(ImageId=web[i], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
                   for i in (1, 2, 3)]
        stopped = [ec2.run_instances(ImageId=web[i], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
                   for i in (4, 5)]
        ec2.stop_instances(InstanceIds=stopped)
        gone = ec2.run_instances(ImageId=web[6], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        ec2.terminate_instances(InstanceIds=[gone])  # a terminated instance holds nothing
        del running
        template = ec2.create_launch_template(
            LaunchTemplateName="numbered", LaunchTemplateData={"ImageId": web[11]})["LaunchTemplate"]
        for i in (12, 13):
            ec2.create_launch_template_version(LaunchTemplateId=template["LaunchTemplateId"],
                                               LaunchTemplateData={"ImageId": web[i]})
        ec2.modify_launch_template(LaunchTemplateId=template["LaunchTemplateId"], DefaultVersion="2")
        ssm.put_parameter(Name="/golden/web", Value=web[14], Type="String", DataType="aws:ec2:image")
        ec2.create_launch_template(LaunchTemplateName="golden",
                                   LaunchTemplateData={"ImageId": "resolve:ssm:/golden/web"})
        asg.create_launch_configuration(LaunchConfigurationName="legacy", ImageId=web[15], InstanceType="t3.micro")
        asg.create_auto_scaling_group(AutoScalingGroupName="legacy", LaunchConfigurationName="legacy",
                                      MinSize=0, MaxSize=1, DesiredCapacity=0, AvailabilityZones=["us-east-1a"])
        fleet = ec2.create_launch_template(
            LaunchTemplateName="fleet", LaunchTemplateData={"ImageId": web[16]})["LaunchTemplate"]
        asg.create_auto_scaling_group(
            AutoScalingGroupName="fleet", MinSize=0, MaxSize=1, DesiredCapacity=0, AvailabilityZones=["us-east-1a"],
            LaunchTemplate={"LaunchTemplateId": fleet["LaunchTemplateId"], "Version": "$Latest"})
        self.in_use = {web[i] for i in (1, 2, 3, 4, 5, 11, 12, 13, 14, 15, 16)}
        self.doomed = sorted(set(web) - set(self.kept) - self.in_use)
        images = ec2.describe_images(ImageIds=web + self.other)["Images"]
        self.snapshot_of = {i["ImageId"]: i["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] for i in images}


@pytest.fixture
def world(aws: MotoServer, kiln: Kiln, tmp_path: Path) -> World:
    create_policy(kiln, tmp_path, policy_body())
    return World(aws)


def aws_args(aws: MotoServer) -> tuple[str, ...]:
    return ("--backend", "aws", "--region", "us-east-1", "--endpoint-url", aws.endpoint, "--rate", "2000",
            "--as-of", AS_OF, "--output", "json")


def account_state(aws: MotoServer) -> tuple[set[str], set[str]]:
    ec2 = client(aws, "ec2")
    images = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    snapshots = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
                 if s["OwnerId"] == "123456789012"}
    return images, snapshots


def test_preview_plans_exactly_the_unused_unexcluded_amis(kiln: Kiln, aws: MotoServer, world: World) -> None:
    result = kiln("lifecycle", "preview", "retire-web", *aws_args(aws))
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    amis = {r["resourceId"]: r for r in plan["resources"] if r["kind"] == "ami"}
    assert set(amis) == set(world.web)  # the 20 others are not selected
    assert sorted(i for i, r in amis.items() if r["action"] == "delete") == world.doomed
    reasons = {i: amis[i]["reason"] for i in world.in_use}
    assert "instance" in reasons[world.web[1]] and "(running)" in reasons[world.web[1]]
    assert "(stopped)" in reasons[world.web[4]]
    assert "($Default)" in reasons[world.web[12]] and "($Latest)" in reasons[world.web[13]]
    assert "resolve:ssm:/golden/web" in reasons[world.web[14]]
    assert "auto scaling group legacy (launch configuration legacy)" in reasons[world.web[15]]
    assert "auto scaling group fleet (launch template" in reasons[world.web[16]]
    assert world.web[6] in world.doomed  # its only instance is terminated
    snaps = {r["resourceId"] for r in plan["resources"] if r["kind"] == "snapshot" and r["action"] == "delete"}
    assert snaps == {world.snapshot_of[i] for i in world.doomed}
    assert account_state(aws)[0] >= set(world.web)  # a preview changes nothing


def test_dry_run_changes_nothing_and_run_deletes_exactly_the_plan(kiln: Kiln, aws: MotoServer, world: World) -> None:
    before = account_state(aws)
    result = kiln("lifecycle", "run", "retire-web", *aws_args(aws), "--dry-run")
    assert result.exit_code == 0, result.stderr
    dry = json.loads(result.stdout)
    assert dry["DryRun"] is True and dry["Failed"] == 0
    assert sorted(s["ResourceId"] for s in dry["Steps"] if s["Kind"] == "ami") == world.doomed
    assert {s["Status"] for s in dry["Steps"]} == {"DRY_RUN_OK"}
    assert account_state(aws) == before

    result = kiln("lifecycle", "run", "retire-web", *aws_args(aws))
    assert result.exit_code == 0, result.stderr
    done = json.loads(result.stdout)
    assert done["Failed"] == 0 and {s["Status"] for s in done["Steps"]} == {"SUCCESS"}
    images, snapshots = account_state(aws)
    assert images == before[0] - set(world.doomed)
    assert snapshots == before[1] - {world.snapshot_of[i] for i in world.doomed}
    assert {world.snapshot_of[i] for i in world.kept + world.other + sorted(world.in_use)} <= snapshots

    again = json.loads(kiln("lifecycle", "run", "retire-web", *aws_args(aws)).stdout)
    assert again["Steps"] == []  # nothing left to do


def test_a_snapshot_another_ami_still_uses_is_kept() -> None:
    """Two AMIs on one snapshot (moto cannot register that): the selected one goes, the snapshot stays,
    also when the other AMI is not selected by the policy."""
    old = datetime(2026, 1, 1, tzinfo=UTC)

    def ami(image_id: str, snapshots: tuple[str, ...], tags: dict[str, str]) -> Ami:
        return Ami(image_id, image_id, "available", old, tags, snapshots, False, None, False)

    amis = [ami("ami-1", ("snap-shared", "snap-own"), {"team": "web"}), ami("ami-2", ("snap-shared",), {})]
    policy = LifecyclePolicy.model_validate({
        **policy_body(), "arn": "arn:aws:imagebuilder:us-east-1:123456789012:lifecycle-policy/retire-web",
        "status": "ENABLED", "dateCreated": old})  # fmt: skip
    rules = lifecycle.adapt(policy)

    class Where:
        region, account_id = "us-east-1", "123456789012"

    as_of = datetime(2026, 6, 1, tzinfo=UTC)
    candidates = [lifecycle._candidate(a, Where, [], as_of) for a in amis]  # type: ignore[arg-type]
    plan = evaluate(rules, [c for c in candidates if c.tags.get("team") == "web"], as_of=as_of)
    lifecycle._keep_shared_snapshots(plan, amis)
    decisions = {d.resource_id: (d.action, d.reason) for d, _ in plan.decisions()}
    assert decisions["ami-1"][0] == "delete" and decisions["snap-own"][0] == "delete"
    assert decisions["snap-shared"] == ("none", "kept: also used by ami-2")


def test_bad_input_is_one_clear_error_and_touches_nothing(kiln: Kiln, aws: MotoServer, world: World,
                                                          tmp_path: Path) -> None:
    before = account_state(aws)
    result = kiln("lifecycle", "run", "retire-web", "--backend", "cloud")
    assert result.exit_code != 0 and "--backend must be local or aws" in result.stderr
    assert "Traceback" not in result.stderr
    result = kiln("lifecycle", "run", "retire-web", *aws_args(aws)[:-4], "--rate", "0")
    assert result.exit_code != 0 and "--rate" in result.stderr
    body = policy_body(recipes=[{"name": "web", "semanticVersion": "1.x.x"}])
    body["name"] = "by-recipe"
    create_policy(kiln, tmp_path, body)
    result = kiln("lifecycle", "run", "by-recipe", *aws_args(aws))
    assert result.exit_code != 0 and "resourceSelection.recipes" in result.stderr
    assert account_state(aws) == before


def test_an_ami_shared_with_an_excluded_account_is_kept(kiln: Kiln, aws: MotoServer, tmp_path: Path) -> None:
    body = policy_body()
    body["policyDetails"][0]["exclusionRules"] = {"amis": {"sharedAccounts": ["111122223333"]}}
    create_policy(kiln, tmp_path, body)
    ec2 = client(aws, "ec2")
    shared, alone = (ec2.register_image(Name=f"web-{n}", RootDeviceName="/dev/xvda")["ImageId"]
                     for n in ("shared", "alone"))
    ec2.create_tags(Resources=[shared, alone], Tags=[{"Key": "team", "Value": "web"}])
    ec2.modify_image_attribute(ImageId=shared, LaunchPermission={"Add": [{"UserId": "111122223333"}]})
    result = kiln("lifecycle", "preview", "retire-web", *aws_args(aws))
    assert result.exit_code == 0, result.stderr
    amis = {r["resourceId"]: r for r in json.loads(result.stdout)["resources"] if r["kind"] == "ami"}
    assert amis[alone]["action"] == "delete"
    assert (amis[shared]["action"], amis[shared]["exclusion"]) == (
        "none", {"rule": "exclusionRules.amis.sharedAccounts", "value": "111122223333"})


def test_an_unresolvable_ssm_reference_is_reported_not_guessed(kiln: Kiln, aws: MotoServer, tmp_path: Path) -> None:
    create_policy(kiln, tmp_path, policy_body())
    ec2 = client(aws, "ec2")
    image_id = ec2.register_image(Name="web-lonely", RootDeviceName="/dev/xvda")["ImageId"]
    ec2.create_tags(Resources=[image_id], Tags=[{"Key": "team", "Value": "web"}])
    template = ec2.create_launch_template(LaunchTemplateName="broken",
                                          LaunchTemplateData={"ImageId": "resolve:ssm:/nowhere"})["LaunchTemplate"]
    result = kiln("lifecycle", "preview", "retire-web", *aws_args(aws))
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    where = f"launch template {template['LaunchTemplateId']} version 1 ($Default, $Latest)"
    assert plan["unresolvedReferences"] == [f"{where}: SSM parameter /nowhere not found"]
    assert f"warning: {where}" in result.stderr
    assert [r["action"] for r in plan["resources"] if r["resourceId"] == image_id] == ["delete"]
    text = kiln("lifecycle", "preview", "retire-web", *aws_args(aws)[:-2])
    assert text.exit_code == 0 and image_id in text.stdout and "summary:" in text.stdout
