"""``kiln compliance audit|remediate --backend aws`` against moto's server: the local audit's rules,
report and exit codes over an AWS account's instances, launch templates (``$Default``/``$Latest``,
numbered, ``resolve:ssm:``) and Auto Scaling groups (launch templates, mixed instances policies,
launch configurations), and remediation by the same plan, made with boto3.

Moto gaps (see the README): it has no GetAllowedImagesSettings (the audit warns and judges them
disabled), no EnableImageDeprecation (disabled AMIs stand in for deprecated ones), no
DescribeInstanceRefreshes and no StartInstanceRefresh (the refresh is planned with its exact call;
made, it fails and the report says so), and gives every AMI today's CreationDate (ages are judged
with --as-of)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.aws.conftest import client
from tests.conftest import Kiln, MotoServer

AS_OF = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
PIPELINE = "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/web"


def apply_rule(kiln: Kiln, tmp_path: Path) -> None:
    rule = tmp_path / "rule.yaml"
    rule.write_text("kind: ComplianceRule\nname: strict\nmaxAgeDays: 30\nminHealthyPercentage: 75\n"
                    "requiredTags: {approved: 'true'}\n")
    assert kiln("apply", "-f", str(rule)).exit_code == 0


def aws_args(aws: MotoServer, *more: str) -> tuple[str, ...]:
    return ("--backend", "aws", "--region", "us-east-1", "--endpoint-url", aws.endpoint, "--rate", "2000",
            "--rule", "strict", "--as-of", AS_OF, *more)


def register(ec2: Any, name: str, **tags: str) -> str:
    image_id = str(ec2.register_image(Name=name, RootDeviceName="/dev/xvda")["ImageId"])
    if tags:
        ec2.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return image_id


class Fleet:
    """Known compliant and non-compliant resources of one account and region."""

    def __init__(self, aws: MotoServer) -> None:
        ec2, ssm, asg = client(aws, "ec2"), client(aws, "ssm"), client(aws, "autoscaling")
        self.good = register(ec2, "good", approved="true")
        self.unapproved = register(ec2, "unapproved")
        self.disabled = register(ec2, "disabled", approved="true")
        ec2.disable_image(ImageId=self.disabled)
        self.gone = register(ec2, "gone", approved="true")
        ec2.deregister_image(ImageId=self.gone)

        def run(image_id: str) -> str:
            return str(ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"])

        self.running_good = run(self.good)
        self.stopped_bad = run(self.unapproved)
        ec2.stop_instances(InstanceIds=[self.stopped_bad])
        ec2.terminate_instances(InstanceIds=[run(self.disabled)])  # terminated: not part of the fleet

        web = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": self.unapproved})
        self.web = web["LaunchTemplate"]["LaunchTemplateId"]
        ec2.create_launch_template_version(LaunchTemplateId=self.web, LaunchTemplateData={"ImageId": self.good})
        ssm.put_parameter(Name="/golden/web", Value=self.disabled, Type="String", DataType="aws:ec2:image")
        ssm.put_parameter(Name="/golden/web", Value=self.good, Type="String", DataType="aws:ec2:image",
                          Overwrite=True)
        golden = ec2.create_launch_template(LaunchTemplateName="golden",
                                            LaunchTemplateData={"ImageId": "resolve:ssm:/golden/web:1"})
        self.golden = golden["LaunchTemplate"]["LaunchTemplateId"]
        current = ec2.create_launch_template(LaunchTemplateName="current",
                                             LaunchTemplateData={"ImageId": "resolve:ssm:/golden/web"})
        self.current = current["LaunchTemplate"]["LaunchTemplateId"]

        zone = {"MinSize": 0, "MaxSize": 1, "DesiredCapacity": 0, "AvailabilityZones": ["us-east-1a"]}
        asg.create_auto_scaling_group(AutoScalingGroupName="web-latest", **zone,
                                      LaunchTemplate={"LaunchTemplateId": self.web, "Version": "$Latest"})
        asg.create_auto_scaling_group(AutoScalingGroupName="web-default", **zone,
                                      LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Default"})
        asg.create_launch_configuration(LaunchConfigurationName="legacy", ImageId=self.gone, InstanceType="t3.micro")
        asg.create_auto_scaling_group(AutoScalingGroupName="legacy", LaunchConfigurationName="legacy", **zone)
        asg.create_auto_scaling_group(AutoScalingGroupName="mixed", **zone, MixedInstancesPolicy={"LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": self.current, "Version": "$Default"},
            "Overrides": [{"InstanceType": "t3.large",
                           "LaunchTemplateSpecification": {"LaunchTemplateId": self.web, "Version": "1"}}]}})


@pytest.fixture
def fleet(aws: MotoServer, kiln: Kiln, tmp_path: Path) -> Fleet:
    apply_rule(kiln, tmp_path)
    return Fleet(aws)


def by_resource(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["ResourceId"], r["Detail"]): r for r in report["Resources"]}


def test_audit_finds_the_planted_violations(kiln: Kiln, aws: MotoServer, fleet: Fleet) -> None:
    result = kiln("compliance", "audit", *aws_args(aws, "--output", "json"))
    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    verdicts = {(r["ResourceType"], r["ResourceId"], r["Detail"]): (r["Compliant"], r["ImageId"], r["Reasons"])
                for r in report["Resources"]}
    assert {r["AccountId"] for r in report["Resources"]} == {"123456789012"}
    assert {r["Region"] for r in report["Resources"]} == {"us-east-1"}
    instances = {k[1]: v for k, v in verdicts.items() if k[0] == "instance"}
    assert set(instances) == {fleet.running_good, fleet.stopped_bad}  # the terminated one is left out
    assert instances[fleet.running_good][:2] == (True, fleet.good)
    assert instances[fleet.stopped_bad][0] is False
    assert instances[fleet.stopped_bad][2] == ["not approved: tag approved=true missing"]

    web = {k[2]: v for k, v in verdicts.items() if k[:2] == ("launch-template", fleet.web)}
    assert web["v1 ($Default)"][:2] == (False, fleet.unapproved)
    assert web["v2 ($Latest)"][:2] == (True, fleet.good)
    golden = verdicts[("launch-template", fleet.golden, "v1 ($Default, $Latest)")]
    assert golden[:2] == (False, fleet.disabled)  # resolve:ssm:/golden/web:1 is the disabled AMI
    assert golden[2] == ["image is disabled"]
    assert verdicts[("launch-template", fleet.current, "v1 ($Default, $Latest)")][:2] == (True, fleet.good)
    assert by_resource(report)[(fleet.golden, "v1 ($Default, $Latest)")]["ImageReference"] == \
        "resolve:ssm:/golden/web:1"

    groups = {(k[1], k[2]): v for k, v in verdicts.items() if k[0] == "auto-scaling-group"}
    assert groups[("web-latest", f"{fleet.web} $Latest = v2")][0] is True
    assert groups[("web-default", f"{fleet.web} $Default = v1")][:2] == (False, fleet.unapproved)
    legacy = groups[("legacy", "launch configuration legacy")]
    assert legacy[:2] == (False, fleet.gone) and "does not exist" in legacy[2][0]
    assert groups[("mixed", f"{fleet.current} $Default = v1")][0] is True
    assert groups[("mixed", f"override {fleet.web} 1 = v1")][:2] == (False, fleet.unapproved)

    assert report["Summary"] == {"auto-scaling-group": {"Total": 5, "NonCompliant": 3},
                                 "instance": {"Total": 2, "NonCompliant": 1},
                                 "launch-template": {"Total": 4, "NonCompliant": 2}}
    # moto has no GetAllowedImagesSettings: said, not guessed
    assert report["Warnings"] and "allowed images settings could not be read" in report["Warnings"][0]
    assert {r["ImageAllowed"] for r in report["Resources"]} == {None}
    first = report["Resources"][0]
    assert set(first) >= {"AccountId", "Region", "ResourceType", "ResourceId", "Name", "Detail", "ImageId",
                          "ImageName", "ImageCreationDate", "ImageAgeDays", "PatchedDate", "Approved",
                          "ImageAllowed", "Compliant", "Reasons", "LaunchTemplateId", "LaunchTemplateVersion"}

    text = kiln("compliance", "audit", *aws_args(aws))
    assert text.exit_code == 1
    assert fleet.web in text.stdout and "out of policy" in text.stdout


def test_a_fleet_in_policy_exits_0_and_bad_input_exits_2(kiln: Kiln, aws: MotoServer, tmp_path: Path) -> None:
    apply_rule(kiln, tmp_path)
    ec2 = client(aws, "ec2")
    good = register(ec2, "good", approved="true")
    ec2.run_instances(ImageId=good, MinCount=1, MaxCount=1)
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": good})
    result = kiln("compliance", "audit", *aws_args(aws, "--output", "json"))
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["Compliant"] is True
    too_old = kiln("compliance", "audit", *aws_args(aws, "--max-age", "1d"))
    assert too_old.exit_code == 1 and "days old, more than 1d" in too_old.stdout

    bad = kiln("compliance", "audit", "--backend", "cloud")
    assert bad.exit_code == 2 and "--backend must be local or aws" in bad.stderr
    assert "Traceback" not in bad.stderr
    local_only = kiln("compliance", "remediate", "--endpoint-url", aws.endpoint)
    assert local_only.exit_code == 2 and "go with --backend aws" in local_only.stderr


class Rollout:
    """A pipeline's old AMI (disabled) in a template and two groups, and its newer AMI in policy."""

    def __init__(self, aws: MotoServer) -> None:
        ec2, asg = client(aws, "ec2"), client(aws, "autoscaling")
        self.old = register(ec2, "app-1", approved="true", **{"kiln:PipelineArn": PIPELINE})
        ec2.disable_image(ImageId=self.old)
        self.new = register(ec2, "app-2", approved="true", **{"kiln:PipelineArn": PIPELINE})
        register(ec2, "app-3-unapproved", **{"kiln:PipelineArn": PIPELINE})  # newest, but out of policy
        self.template = ec2.create_launch_template(
            LaunchTemplateName="app", LaunchTemplateData={"ImageId": self.old, "InstanceType": "t3.micro"}
        )["LaunchTemplate"]["LaunchTemplateId"]
        zone = {"MinSize": 0, "MaxSize": 1, "DesiredCapacity": 0, "AvailabilityZones": ["us-east-1a"]}
        asg.create_auto_scaling_group(AutoScalingGroupName="app-default", **zone,
                                      LaunchTemplate={"LaunchTemplateId": self.template, "Version": "$Default"})
        asg.create_auto_scaling_group(AutoScalingGroupName="app-pinned", **zone,
                                      LaunchTemplate={"LaunchTemplateId": self.template, "Version": "1"})
        # an AMI of no pipeline: nothing newer to move to
        self.orphan = ec2.create_launch_template(
            LaunchTemplateName="orphan", LaunchTemplateData={"ImageId": register(ec2, "hand-made")}
        )["LaunchTemplate"]["LaunchTemplateId"]


def template_state(aws: MotoServer, template_id: str) -> tuple[Any, ...]:
    ec2 = client(aws, "ec2")
    [template] = ec2.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"]
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=template_id)["LaunchTemplateVersions"]
    return (template["DefaultVersionNumber"], template["LatestVersionNumber"],
            sorted((v["VersionNumber"], v["LaunchTemplateData"].get("ImageId")) for v in versions))


def test_remediate_dry_run_prints_the_calls_and_changes_nothing(kiln: Kiln, aws: MotoServer,
                                                                 tmp_path: Path) -> None:
    apply_rule(kiln, tmp_path)
    world = Rollout(aws)
    before = template_state(aws, world.template), template_state(aws, world.orphan)
    result = kiln("compliance", "remediate", "--dry-run", *aws_args(aws, "--output", "json"))
    assert result.exit_code == 1, result.stderr  # the orphan template cannot be fixed
    plan = json.loads(result.stdout)
    assert plan["DryRun"] is True and plan["Failed"] == 0
    assert [(a["Action"], a["ResourceId"]) for a in plan["Actions"]] == [
        ("create-launch-template-version", world.template), ("set-default-version", world.template),
        ("start-instance-refresh", "app-default"), ("start-instance-refresh", "app-pinned")]
    create, default, follows, pinned = (a["Call"] for a in plan["Actions"])
    assert create == {"Operation": "ec2:CreateLaunchTemplateVersion", "Parameters": {
        "LaunchTemplateId": world.template, "SourceVersion": "1", "VersionDescription": "kiln compliance: strict",
        "LaunchTemplateData": {"ImageId": world.new}}}
    assert default == {"Operation": "ec2:ModifyLaunchTemplate",
                       "Parameters": {"LaunchTemplateId": world.template, "DefaultVersion": "2"}}
    assert follows == {"Operation": "autoscaling:StartInstanceRefresh", "Parameters": {
        "AutoScalingGroupName": "app-default", "Preferences": {"MinHealthyPercentage": 75}}}
    assert pinned["Parameters"]["DesiredConfiguration"] == {
        "LaunchTemplate": {"LaunchTemplateId": world.template, "Version": "2"}}
    # EC2 checked the CreateLaunchTemplateVersion call with DryRun; the rest is not sent
    assert [a["Status"] for a in plan["Actions"]] == ["DRY_RUN_OK", None, None, None]
    assert plan["Actions"][0]["Parameters"]["Pipeline"] == PIPELINE
    assert [u["ResourceId"] for u in plan["Unfixable"]] == [world.orphan]
    assert "not made by a pipeline" in plan["Unfixable"][0]["Reason"]
    assert (template_state(aws, world.template), template_state(aws, world.orphan)) == before

    text = kiln("compliance", "remediate", "--dry-run", *aws_args(aws))
    assert "would do (dry run, nothing changed)" in text.stdout
    assert f'ec2:CreateLaunchTemplateVersion {{"LaunchTemplateData": {{"ImageId": "{world.new}"}}' in text.stdout


def test_remediate_rolls_a_new_default_version_and_asks_for_the_refreshes(kiln: Kiln, aws: MotoServer,
                                                                           tmp_path: Path) -> None:
    apply_rule(kiln, tmp_path)
    world = Rollout(aws)
    result = kiln("compliance", "remediate", *aws_args(aws, "--output", "json"))
    plan = json.loads(result.stdout)
    default, latest, versions = template_state(aws, world.template)
    assert (default, latest) == (2, 2)
    assert versions == [(1, world.old), (2, world.new)]
    # (made with SourceVersion 1: AWS carries v1's other settings over, moto does not: the README's gaps)
    ec2 = client(aws, "ec2")
    [made] = ec2.describe_launch_template_versions(LaunchTemplateId=world.template, Versions=["2"])[
        "LaunchTemplateVersions"]
    assert made["VersionDescription"] == "kiln compliance: strict"
    statuses = {(a["Action"], a["ResourceId"]): a for a in plan["Actions"]}
    assert statuses[("create-launch-template-version", world.template)]["Status"] == "SUCCESS"
    assert statuses[("set-default-version", world.template)]["Status"] == "SUCCESS"
    # moto has no StartInstanceRefresh (nor DescribeInstanceRefreshes): the calls were made and failed
    for group in ("app-default", "app-pinned"):
        refresh = statuses[("start-instance-refresh", group)]
        assert refresh["Status"] == "FAILED" and "autoscaling StartInstanceRefresh" in refresh["Error"]
    assert statuses[("start-instance-refresh", "app-pinned")]["Call"]["Parameters"]["DesiredConfiguration"] == {
        "LaunchTemplate": {"LaunchTemplateId": world.template, "Version": "2"}}
    assert plan["Failed"] == 2 and result.exit_code == 1
    assert any("instance refreshes of group app-default could not be read" in w for w in plan["Warnings"])

    audit = json.loads(kiln("compliance", "audit", *aws_args(aws, "--output", "json")).stdout)
    template = {r["Detail"]: r["Compliant"] for r in audit["Resources"] if r["ResourceId"] == world.template}
    assert template == {"v2 ($Default, $Latest)": True}


def test_a_failed_version_skips_what_depends_on_it(kiln: Kiln, aws: MotoServer, tmp_path: Path) -> None:
    """The template is deleted between the plan's reads and its calls (a real race): the default
    version and the refresh onto it are skipped, not attempted."""
    from kiln.services.aws_accounts import account as aws_account
    from kiln.services.aws_accounts.compliance import AwsFleet
    from kiln.services.compliance import remediate, rules

    apply_rule(kiln, tmp_path)
    world = Rollout(aws)
    fleet = AwsFleet(aws_account.connect("us-east-1", None, aws.endpoint, 2000))
    plan = remediate.make_plan(rules.get_rule("strict"), as_of=datetime.fromisoformat(AS_OF), dry_run=False,
                               fleet=fleet)
    client(aws, "ec2").delete_launch_template(LaunchTemplateId=world.template)
    fleet.execute(plan)
    assert [(a.action, a.status) for a in plan.actions] == [
        ("create-launch-template-version", "FAILED"), ("set-default-version", "SKIPPED"),
        ("start-instance-refresh", "SKIPPED"), ("start-instance-refresh", "SKIPPED")]
    assert "CreateLaunchTemplateVersion" in (plan.actions[0].error or "")


def test_a_configured_backend_needs_no_backend_option(kiln: Kiln, aws: MotoServer, kiln_home: Path,
                                                      tmp_path: Path) -> None:
    import yaml

    apply_rule(kiln, tmp_path)
    ec2 = client(aws, "ec2")
    instance = ec2.run_instances(ImageId=register(ec2, "unapproved"), MinCount=1, MaxCount=1)["Instances"][0]
    config = kiln_home / "backends.yaml"

    def configure(*entries: dict[str, str]) -> None:
        config.write_text(yaml.safe_dump({"backends": list(entries)}))

    def audit(*more: str) -> Any:
        return kiln("compliance", "audit", "--region", "us-east-1", "--rule", "strict", "--as-of", AS_OF,
                    "--output", "json", *more)

    configure({"region": "us-east-1", "backend": "aws", "endpointUrl": aws.endpoint})
    result = audit()
    assert result.exit_code == 1, result.stderr
    assert [r["ResourceId"] for r in json.loads(result.stdout)["Resources"]] == [instance["InstanceId"]]
    orphans = kiln("snapshot", "list", "--orphaned", "--region", "us-east-1", "--output", "json")
    assert orphans.exit_code == 0 and json.loads(orphans.stdout)["AccountId"] == "123456789012"
    explicit = audit("--backend", "local")  # --backend wins: kiln's own (empty) fleet
    assert explicit.exit_code == 0 and json.loads(explicit.stdout)["Resources"] == []

    configure({"region": "us-east-1", "account": "111122223333", "backend": "aws", "endpointUrl": aws.endpoint})
    other = audit("--account", "123456789012")  # configured for another account only: local
    assert other.exit_code == 0 and json.loads(other.stdout)["Resources"] == []

    configure({"region": "us-east-1", "backend": "cloud"})
    bad = audit()
    assert bad.exit_code == 2 and "backends.yaml: backends[0].backend" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_mixed_instances_overrides_are_remediated_through_their_template(kiln: Kiln, aws: MotoServer,
                                                                         tmp_path: Path) -> None:
    apply_rule(kiln, tmp_path)
    world = Rollout(aws)
    ec2, asg = client(aws, "ec2"), client(aws, "autoscaling")
    base = ec2.create_launch_template(LaunchTemplateName="base", LaunchTemplateData={
        "ImageId": register(ec2, "base", approved="true")})["LaunchTemplate"]["LaunchTemplateId"]
    zone = {"MinSize": 0, "MaxSize": 1, "DesiredCapacity": 0, "AvailabilityZones": ["us-east-1a"]}

    def mixed(name: str, version: str) -> None:
        asg.create_auto_scaling_group(AutoScalingGroupName=name, **zone, MixedInstancesPolicy={"LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": base, "Version": "$Default"},
            "Overrides": [{"InstanceType": "t3.large",
                           "LaunchTemplateSpecification": {"LaunchTemplateId": world.template, "Version": version}}]}})

    mixed("mixed-follows", "$Default")
    mixed("mixed-pinned", "1")
    result = kiln("compliance", "remediate", "--dry-run", *aws_args(aws, "--output", "json"))
    plan = json.loads(result.stdout)
    refreshes = {a["ResourceId"]: a["Call"]["Parameters"] for a in plan["Actions"]
                 if a["Action"] == "start-instance-refresh"}
    assert refreshes["mixed-follows"] == {"AutoScalingGroupName": "mixed-follows",
                                          "Preferences": {"MinHealthyPercentage": 75}}
    reasons = {u["ResourceId"]: u["Reason"] for u in plan["Unfixable"]}
    assert "mixed-pinned" not in refreshes
    assert reasons["mixed-pinned"] == f"its mixed instances override pins {world.template} v1; point it at $Default"


def test_a_version_numbered_otherwise_than_planned_is_the_one_made_default(kiln: Kiln, aws: MotoServer,
                                                                           tmp_path: Path) -> None:
    """Someone adds a version between the plan's reads and its calls: EC2 numbers the new one 3, not
    the planned 2, and the default version and the pinned group's refresh follow the number made."""
    from kiln.services.aws_accounts import account as aws_account
    from kiln.services.aws_accounts.compliance import AwsFleet
    from kiln.services.compliance import remediate, rules

    apply_rule(kiln, tmp_path)
    world = Rollout(aws)
    fleet = AwsFleet(aws_account.connect("us-east-1", None, aws.endpoint, 2000))
    plan = remediate.make_plan(rules.get_rule("strict"), as_of=datetime.fromisoformat(AS_OF), dry_run=False,
                               fleet=fleet)
    ec2 = client(aws, "ec2")
    ec2.create_launch_template_version(LaunchTemplateId=world.template, LaunchTemplateData={"ImageId": world.old})
    fleet.execute(plan)
    assert template_state(aws, world.template)[:2] == (3, 3)
    shapes = [action.shape() for action in plan.actions]
    assert shapes[1]["Call"]["Parameters"]["DefaultVersion"] == "3" and shapes[1]["Status"] == "SUCCESS"
    assert shapes[3]["Call"]["Parameters"]["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "3"
