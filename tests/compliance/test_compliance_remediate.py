"""``kiln compliance remediate``: a new template version with the pipeline's newest image in policy,
made default, and an instance refresh with the rule's MinHealthyPercentage; ``--dry-run`` says exactly
that and changes nothing; what cannot be fixed is reported with exit code 1 and nothing changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kiln.services import demo_fleet as demo

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")
R = ("--region", "us-east-1")


@pytest.fixture
def aged(kiln, tmp_path: Path) -> dict[str, str]:
    """web-1 built by a pipeline, 31 days old, in the owner's template and an (empty) group."""
    demo._world()
    rule = tmp_path / "rule.yaml"
    rule.write_text("kind: ComplianceRule\nname: strict\nmaxAgeDays: 30\nminHealthyPercentage: 75\n")
    assert kiln("apply", "-f", str(rule)).exit_code == 0
    parent = demo._parent_image(tmp_path)
    mine, theirs = demo._templates()
    pipeline = demo._pipeline(demo._recipe(parent, "1.0.0", "web-1"), theirs)
    web1 = demo._build(pipeline, lambda _: None)
    old = demo._amis(web1)["123456789012"]
    demo._use_image(mine, old)
    kiln("asg", "create", "web-asg", "--launch-template", f"{mine},$Default", "--min-size", "0", "--max-size", "3",
         "--desired-capacity", "0", *R)
    demo._move_clock(web1)
    return {"pipeline": pipeline, "parent": parent, "template": mine, "old": old}


def _state(kiln, template: str) -> tuple:
    versions = json.loads(kiln("launch-template", "describe-versions", template, "--output", "json", *R).stdout)
    refreshes = kiln("asg", "describe-instance-refreshes", "web-asg", "--output", "json", *R).stdout
    return versions, refreshes


def test_dry_run_prints_the_plan_and_changes_nothing_then_the_real_run_does_it(kiln, aged: dict[str, str]) -> None:
    demo._update_pipeline(aged["pipeline"], demo._recipe(aged["parent"], "1.0.1", "web-2"))
    new = demo._amis(demo._build(aged["pipeline"], lambda _: None))["123456789012"]
    before = _state(kiln, aged["template"])
    dry = kiln("compliance", "remediate", "--dry-run", "--rule", "strict", "--output", "json")
    assert dry.exit_code == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["DryRun"] is True and plan["Unfixable"] == []
    assert [(a["Action"], a["ResourceId"]) for a in plan["Actions"]] == [
        ("create-launch-template-version", aged["template"]), ("set-default-version", aged["template"]),
        ("start-instance-refresh", "web-asg")]
    assert plan["Actions"][0]["Parameters"]["ImageId"] == new
    assert plan["Actions"][0]["Parameters"]["Pipeline"] == aged["pipeline"]
    assert plan["Actions"][2]["Parameters"]["Preferences"] == {"MinHealthyPercentage": 75}
    assert _state(kiln, aged["template"]) == before
    assert kiln("compliance", "audit", "--rule", "strict").exit_code == 1

    done = kiln("compliance", "remediate", "--rule", "strict", "--output", "json")
    assert done.exit_code == 0, done.stderr
    assert [a["Action"] for a in json.loads(done.stdout)["Actions"]] == [a["Action"] for a in plan["Actions"]]
    [template] = json.loads(kiln("launch-template", "describe", aged["template"], "--output", "json", *R).stdout
                            )["LaunchTemplates"]
    assert template["DefaultVersionNumber"] == template["LatestVersionNumber"] == 3
    [refresh] = json.loads(_state(kiln, aged["template"])[1])["InstanceRefreshes"]
    assert refresh["Preferences"]["MinHealthyPercentage"] == 75
    audit = kiln("compliance", "audit", "--rule", "strict", "--region", "us-east-1", "--account", "123456789012")
    assert audit.exit_code == 0, audit.stdout


def test_with_no_newer_build_nothing_can_be_fixed_exit_1_nothing_changed(kiln, aged: dict[str, str]) -> None:
    before = _state(kiln, aged["template"])
    result = kiln("compliance", "remediate", "--rule", "strict", "--output", "json")
    assert result.exit_code == 1
    plan = json.loads(result.stdout)
    assert plan["Actions"] == []
    reasons = {u["ResourceId"]: u["Reason"] for u in plan["Unfixable"]}
    assert f"pipeline {aged['pipeline']} has no image in policy" in reasons[aged["template"]]
    assert reasons["web-asg"] == f"its launch template {aged['template']} has no version in policy to refresh onto"
    assert _state(kiln, aged["template"]) == before


def test_a_resolve_ssm_template_relies_on_its_parameter(kiln, aged: dict[str, str]) -> None:
    kiln("parameter", "put", "/golden/web", aged["old"], "--data-type", "aws:ec2:image", *R)
    made = kiln("launch-template", "create", "web-ssm", "--launch-template-data",
                json.dumps({"ImageId": "resolve:ssm:/golden/web"}), *R)
    assert made.exit_code == 0, made.stderr
    plan = json.loads(kiln("compliance", "remediate", "--dry-run", "--output", "json").stdout)
    [ssm] = [u for u in plan["Unfixable"] if u["ResourceId"] == made.stdout.strip()]
    assert "resolve:ssm:/golden/web resolves to an image out of policy" in ssm["Reason"]
    assert "put a compliant image in the parameter" in ssm["Reason"]


@pytest.mark.parametrize(("args", "where"), [
    (("--max-age", "-3d"), "--max-age"), (("--as-of", "31/12/2026"), "--as-of"), (("--rule", "nope"), "--rule")])
def test_bad_input_is_one_error_and_nothing_changes(kiln, aged: dict[str, str], args: tuple, where: str) -> None:
    before = _state(kiln, aged["template"])
    result = kiln("compliance", "remediate", *args)
    assert result.exit_code == 2 and where in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # the error and its hint
    assert _state(kiln, aged["template"]) == before


def test_a_group_whose_template_is_already_fixed_only_gets_a_refresh(kiln, aged: dict[str, str]) -> None:
    kiln("asg", "update", "web-asg", "--desired-capacity", "1", *R)
    assert kiln("asg", "reconcile", "web-asg", *R).exit_code == 0
    demo._update_pipeline(aged["pipeline"], demo._recipe(aged["parent"], "1.0.1", "web-2"))
    new = demo._amis(demo._build(aged["pipeline"], lambda _: None))["123456789012"]
    demo._use_image(aged["template"], new)  # as a distribution's launchTemplateConfigurations would
    audit = json.loads(kiln("compliance", "audit", "--output", "json", "--rule", "strict").stdout)
    [instance] = [r for r in audit["Resources"] if r["ResourceType"] == "instance"]
    assert instance["AutoScalingGroupName"] == "web-asg" and instance["ImageId"] == aged["old"]
    [group] = [r for r in audit["Resources"] if r["ResourceType"] == "auto-scaling-group"]
    assert group["Compliant"] and group["ImageId"] == new
    plan = json.loads(kiln("compliance", "remediate", "--rule", "strict", "--output", "json").stdout)
    assert [(a["Action"], a["ResourceId"]) for a in plan["Actions"]] == [("start-instance-refresh", "web-asg")]
    assert plan["Actions"][0]["Parameters"]["InstanceRefreshId"]
