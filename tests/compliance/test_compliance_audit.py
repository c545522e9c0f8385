"""``kiln compliance audit``: every live instance, group and template judged by age, approval and
allowed images, per account and region, as of a moment; exit code 1 when anything is out of policy;
bad input refused with one error and nothing changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")
LATER = {"KILN_CLOCK": "+31d"}


@pytest.fixture
def fleet(kiln, busybox_dir: Path) -> dict[str, str]:
    """An AMI, a template using it, a group of two running instances, a resolve:ssm: template."""
    ami = kiln("image", "import", str(busybox_dir), "--name", "golden-web").stdout.strip()
    template = kiln("launch-template", "create", "web", "--launch-template-data",
                    json.dumps({"ImageId": ami, "InstanceType": "t3.micro"})).stdout.strip()
    assert kiln("parameter", "put", "/golden/web", ami, "--data-type", "aws:ec2:image").exit_code == 0
    by_parameter = kiln("launch-template", "create", "web-ssm", "--launch-template-data",
                        json.dumps({"ImageId": "resolve:ssm:/golden/web"})).stdout.strip()
    assert kiln("asg", "create", "web-asg", "--launch-template", "web", "--min-size", "0", "--max-size", "4",
                "--desired-capacity", "2").exit_code == 0
    reconciled = kiln("asg", "reconcile", "web-asg", "--output", "json")
    assert reconciled.exit_code == 0, reconciled.stderr
    return {"ami": ami, "template": template, "ssm": by_parameter}


def _audit(kiln, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    result = kiln("compliance", "audit", *args, "--output", "json", env=env)
    assert result.stderr == "" or result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_a_fresh_fleet_is_clean_and_every_resource_is_listed(kiln, fleet: dict[str, str]) -> None:
    code, report = _audit(kiln)
    assert code == 0 and report["Compliant"] is True
    kinds = sorted((r["ResourceType"], r["ResourceId"]) for r in report["Resources"])
    assert [k for k, _ in kinds].count("instance") == 2
    assert ("auto-scaling-group", "web-asg") in kinds
    assert ("launch-template", fleet["template"]) in kinds and ("launch-template", fleet["ssm"]) in kinds
    ssm = next(r for r in report["Resources"] if r["ResourceId"] == fleet["ssm"])
    assert ssm["ImageId"] == fleet["ami"] and ssm["ImageReference"] == "resolve:ssm:/golden/web"
    assert all(r["ImageId"] == fleet["ami"] and r["ImageAgeDays"] == 0 and r["PatchedSource"] == "build date"
               for r in report["Resources"])


def test_31_days_later_everything_fails_with_its_reason_and_exit_code_1(kiln, fleet: dict[str, str]) -> None:
    code, report = _audit(kiln, env=LATER)
    assert code == 1 and report["Compliant"] is False
    assert report["Summary"]["auto-scaling-group"] == {"Total": 1, "NonCompliant": 1}
    assert report["Summary"]["instance"] == {"Total": 2, "NonCompliant": 2}
    for row in report["Resources"]:
        assert row["Reasons"] == ["image is 31 days old, more than 30d"], row
    # the same judgement from --as-of, and a longer --max-age makes it clean again
    as_of = (report["AsOf"][:10])
    assert _audit(kiln, "--as-of", as_of)[0] == 1
    assert _audit(kiln, "--max-age", "5w", env=LATER)[0] == 0


def test_the_table_shows_whole_ids_per_account_and_region(kiln, fleet: dict[str, str]) -> None:
    result = kiln("compliance", "audit", env=LATER)
    assert result.exit_code == 1
    assert "account 123456789012, region local" in result.stdout
    assert fleet["template"] in result.stdout and fleet["ami"] in result.stdout
    assert "FAIL" in result.stdout and "patched date = the image's build date" in result.stdout


def test_a_rule_with_required_tags_reports_approval(kiln, fleet: dict[str, str], tmp_path: Path) -> None:
    rule = tmp_path / "rule.yaml"
    rule.write_text("kind: ComplianceRule\nname: approved-only\nmaxAgeDays: 30\n"
                    "requiredTags: {'kiln:Approved': 'true'}\nminHealthyPercentage: 66\n")
    applied = kiln("apply", "-f", str(rule))
    assert applied.exit_code == 0, applied.stderr
    code, report = _audit(kiln, "--rule", "approved-only")
    assert code == 1 and report["Rule"]["RequiredTags"] == {"kiln:Approved": "true"}
    assert all(r["Approved"] is False and r["Reasons"] == ["not approved: tag kiln:Approved=true missing"]
               for r in report["Resources"])
    assert kiln("image", "tag", fleet["ami"], "kiln:Approved=true").exit_code == 0
    code, report = _audit(kiln, "--rule", "approved-only")
    assert code == 0 and all(r["Approved"] is True for r in report["Resources"])


def test_allowed_images_and_scope_filters(kiln, fleet: dict[str, str]) -> None:
    kiln("image", "allowed", "replace-criteria", "--image-criteria", '[{"ImageNames": ["other-*"]}]')
    kiln("image", "allowed", "enable", "--state", "audit-mode", "--include-own-images")
    code, report = _audit(kiln)
    assert code == 1
    assert all(r["ImageAllowed"] is False and "not allowed by the allowed images settings" in r["Reasons"][0]
               for r in report["Resources"])
    assert _audit(kiln, "--account", "111122223333")[1]["Resources"] == []
    assert _audit(kiln, "--region", "eu-west-1")[0] == 0


def test_a_group_on_a_deleted_template_fails_with_its_reason(kiln, fleet: dict[str, str]) -> None:
    kiln("asg", "update", "web-asg", "--desired-capacity", "0")
    kiln("asg", "reconcile", "web-asg")
    assert kiln("launch-template", "delete", "web").exit_code == 0
    code, report = _audit(kiln)
    [group] = [r for r in report["Resources"] if r["ResourceType"] == "auto-scaling-group"]
    assert code == 1 and group["Reasons"] == [f"launch template {fleet['template']} does not exist"]


@pytest.mark.parametrize(("args", "where"), [
    (("--max-age", "thirty"), "--max-age"),
    (("--max-age", "0d"), "--max-age"),
    (("--as-of", "yesterday"), "--as-of"),
    (("--as-of", "2027-02-30"), "--as-of"),
    (("--rule", "no-such-rule"), "--rule"),
])
def test_bad_input_is_one_clear_error(kiln, args: tuple[str, ...], where: str) -> None:
    result = kiln("compliance", "audit", *args)
    assert result.exit_code == 2  # not 1: a script tells bad input from "out of policy"
    assert result.stderr.startswith(f"error: {where}: ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 2  # the error and its hint
    assert result.stdout == ""


def test_allowed_images_judge_the_watermarks_of_the_fleets_images(kiln, busybox_dir: Path) -> None:
    ami = kiln("image", "import", str(busybox_dir), "--name", "golden-web").stdout.strip()
    template = kiln("launch-template", "create", "web", "--launch-template-data",
                    json.dumps({"ImageId": ami})).stdout.strip()
    kiln("image", "allowed", "replace-criteria", "--image-criteria",
         '[{"ImageWatermarks": [{"WatermarkKey": "*:gold"}]}]')
    kiln("image", "allowed", "enable", "--state", "audit-mode", "--include-own-images")
    code, report = _audit(kiln)
    assert code == 1 and report["Resources"][0]["ResourceId"] == template
    assert "it has no watermark" in report["Resources"][0]["Reasons"][0]
    assert kiln("image", "watermark", "attach", ami, "gold").exit_code == 0
    code, report = _audit(kiln)
    assert code == 0 and report["Resources"][0]["ImageAllowed"] is True
