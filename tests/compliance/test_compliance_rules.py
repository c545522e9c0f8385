"""ComplianceRule documents through ``kiln apply`` (checked, stored, updated, listed), refused with one
error naming the document and field, and the scheduler's job that audits on the rule's schedule and
records one event per violation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

RULE = """kind: ComplianceRule
name: golden-30
maxAgeDays: %d
requiredTags: {kiln:Approved: "true"}
accounts: ["123456789012"]
regions: [us-east-1]
minHealthyPercentage: 66
schedule: cron(0 6 * * ? *)
"""


def _apply(kiln, tmp_path: Path, text: str):
    path = tmp_path / "rule.yaml"
    path.write_text(text)
    return kiln("apply", "-f", str(path))


def test_apply_creates_updates_and_lists_a_rule(kiln, tmp_path: Path) -> None:
    assert _apply(kiln, tmp_path, RULE % 30).exit_code == 0
    assert "unchanged" in _apply(kiln, tmp_path, RULE % 30).stdout
    assert "updated" in _apply(kiln, tmp_path, RULE % 14).stdout
    [rule] = json.loads(kiln("compliance", "rules", "--region", "us-east-1", "--output", "json").stdout)
    assert rule == {"Name": "golden-30", "MaxAge": "14d", "RequiredTags": {"kiln:Approved": "true"},
                    "Accounts": ["123456789012"], "Regions": ["us-east-1"], "MinHealthyPercentage": 66,
                    "SetDefaultVersion": True, "Schedule": "cron(0 6 * * ? *)", "ScanCondition": None}
    table = kiln("compliance", "rules", "--region", "us-east-1").stdout
    assert json.loads(kiln("compliance", "rules", "--output", "json").stdout) == []  # not local's rule
    assert "golden-30" in table and "kiln:Approved=true" in table and "cron(0 6 * * ? *)" in table


@pytest.mark.parametrize(("change", "field"), [
    (("minHealthyPercentage: 66", "minHealthyPercentage: 150"), "minHealthyPercentage"),
    (("maxAgeDays: %d", "maxAgeDays: 0"), "maxAgeDays"),
    (("schedule: cron(0 6 * * ? *)", "schedule: every day"), "schedule"),
    (("schedule: cron(0 6 * * ? *)", "schedule: cron(0 99 * * ? *)"), "schedule"),
    (("accounts: [\"123456789012\"]", "accounts: [\"12345\"]"), "accounts"),
    (("name: golden-30", "name: golden-30\nmaxAge: 30d"), "maxAge"),
])
def test_a_bad_rule_is_one_error_naming_the_field_and_nothing_is_stored(
        kiln, tmp_path: Path, change: tuple[str, str], field: str) -> None:
    text = RULE.replace(*change)
    result = _apply(kiln, tmp_path, text % 30 if "%d" in text else text)
    assert result.exit_code != 0 and field in result.stderr and "Traceback" not in result.stderr
    assert json.loads(kiln("compliance", "rules", "--region", "us-east-1", "--output", "json").stdout) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="images need root to import")
def test_the_scheduler_audits_on_the_rule_schedule_and_records_one_event_per_violation(
        kiln, tmp_path: Path, busybox_dir: Path) -> None:
    from kiln.services.common.events import list_events
    from kiln.services.compliance.jobs import KEY_PREFIX, VIOLATION_EVENT, run_due
    from kiln.services.registry import scheduler_jobs

    kiln("region", "create", "us-east-1")
    assert _apply(kiln, tmp_path, RULE % 30).exit_code == 0
    ami = kiln("image", "import", str(busybox_dir), "--name", "golden-web", "--region", "us-east-1").stdout.strip()
    template = kiln("launch-template", "create", "web", "--region", "us-east-1",
                    "--launch-template-data", json.dumps({"ImageId": ami})).stdout.strip()
    kiln("launch-template", "create", "elsewhere", "--launch-template-data", json.dumps({"ImageId": ami}))
    [job] = [job for job in scheduler_jobs() if job.key.startswith(KEY_PREFIX)]
    assert (job.key, job.schedule, job.enabled) == ("compliance:golden-30", "cron(0 6 * * ? *)", True)
    run_due(job.key, "2026-12-07T06:00:00+00:00")
    events = [e for e in list_events() if e["kind"] == VIOLATION_EVENT]
    assert [e["arn"] for e in events] == [f"arn:aws:ec2:us-east-1:123456789012:launch-template/{template}"]
    assert events[0]["detail"]["Reasons"] == ["not approved: tag kiln:Approved=true missing"]
    assert events[0]["detail"]["Rule"] == "golden-30"
    tagged = kiln("image", "tag", ami, "kiln:Approved=true", "--region", "us-east-1")
    assert tagged.exit_code == 0, tagged.stderr
    run_due(job.key, "2026-12-08T06:00:00+00:00")
    assert len([e for e in list_events() if e["kind"] == VIOLATION_EVENT]) == 1
