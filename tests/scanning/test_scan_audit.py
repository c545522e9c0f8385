"""Scans in the compliance audit (scan state, highest fixable severity, oldest days since a fix, watermarks;
a rule's ``scanCondition`` fails an image), the scheduler's daily rescan, and ``kiln image patch-status``."""

from __future__ import annotations

import json
import lzma
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import Kiln
from tests.scanning.conftest import LoopbackServer, Served
from tests.scanning.scan_images import ADVISORIES, LATER, debian_root, import_advisories

from kiln.services.scanning import config


@pytest.fixture
def template_ami(kiln: Kiln, kiln_home: Path, busybox_copy: Callable[[str], Path]) -> str:
    from kiln.store import api

    ami = api.import_rootfs(debian_root(busybox_copy("golden")), name="golden")
    made = kiln("launch-template", "create", "web", "--launch-template-data",
                json.dumps({"ImageId": ami, "InstanceType": "t3.micro"}))
    assert made.exit_code == 0, made.stderr
    return ami


def _rule(kiln: Kiln, tmp_path: Path, name: str, condition: str) -> None:
    rule = tmp_path / f"{name}.yaml"
    rule.write_text(f"kind: ComplianceRule\nname: {name}\nmaxAgeDays: 30\nscanCondition: {condition}\n")
    applied = kiln("apply", "-f", str(rule))
    assert applied.exit_code == 0, applied.stderr


def _audit(kiln: Kiln, rule: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    result = kiln("compliance", "audit", "--rule", rule, "--output", "json", env=env)
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_audit_reports_scans_and_the_rules_scan_condition_fails_images(
        kiln: Kiln, template_ami: str, tmp_path: Path) -> None:
    import_advisories(tmp_path / "osv", ADVISORIES)
    _rule(kiln, tmp_path, "no-high", "{MaximumSeverityLabel: high}")
    _rule(kiln, tmp_path, "fresh-fixes", "{MaxDaysSinceCriticalFixAvailable: 30}")
    code, report = _audit(kiln, "no-high")
    assert code == 1 and report["Rule"]["ScanCondition"] == {"MaximumSeverityLabel": "high"}
    [template] = report["Resources"]
    assert template["ScanState"] is None and template["Reasons"] == ["scan condition: it has never been scanned"]

    assert kiln("image", "scan", template_ami).exit_code == 0
    assert kiln("image", "watermark", "attach", template_ami, "approved").exit_code == 0
    code, report = _audit(kiln, "no-high")
    [template] = report["Resources"]
    assert (template["ScanState"], template["HighestFixableSeverity"], template["Watermarks"]) == (
        "COMPLETED", "critical", ["123456789012:approved"])
    assert template["Reasons"] == ["scan condition: its highest finding severity is critical, above high"]
    text = kiln("compliance", "audit", "--rule", "no-high", env={"COLUMNS": "40"})
    header, line = (next(row for row in text.stdout.splitlines() if row.startswith(start))
                    for start in ("TYPE", "launch-template"))
    assert header.split()[8:13] == ["SCAN", "FIXABLE", "FIX", "AGE", "WATERMARKS"]
    assert template_ami in line.split() and "123456789012:approved" in line.split()  # whole, never cut
    assert [cell for cell in line.split() if cell in ("COMPLETED", "critical")] == ["COMPLETED", "critical"]
    code, report = _audit(kiln, "fresh-fixes", env={"KILN_CLOCK": "2026-10-20T00:00:00Z"})
    assert code == 0 and report["Resources"][0]["OldestDaysSinceFixAvailable"] == 19
    code, report = _audit(kiln, "fresh-fixes", env={"KILN_CLOCK": "2026-11-20T00:00:00Z"})
    assert code == 1 and "more than 30 days" in report["Resources"][0]["Reasons"][0]


def test_a_bad_scan_condition_is_refused_by_member(kiln: Kiln, kiln_home: Path, tmp_path: Path) -> None:
    rule = tmp_path / "bad.yaml"
    rule.write_text("kind: ComplianceRule\nname: bad\nscanCondition: {MaximumSeverityLabel: severe}\n")
    refused = kiln("apply", "-f", str(rule))
    assert refused.exit_code != 0 and "scanCondition.MaximumSeverityLabel" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert kiln("compliance", "audit", "--rule", "bad").exit_code != 0  # nothing was applied


def test_the_daily_rescan_picks_up_new_advisories(kiln: Kiln, template_ami: str, tmp_path: Path) -> None:
    from kiln.services.registry import scheduler_jobs
    from kiln.services.scanning import jobs
    from kiln.store.scans import latest_scan

    assert jobs.KEY not in {job.key for job in scheduler_jobs()}  # no advisory data: nothing to rescan against
    import_advisories(tmp_path / "osv", ADVISORIES)
    assert jobs.KEY in {job.key for job in scheduler_jobs()}
    assert jobs.rescan_all() == {template_ami: "COMPLETED"}
    import_advisories(tmp_path / "osv", [*ADVISORIES, LATER])
    jobs.run_due(jobs.KEY, "2026-12-07T01:00:00+00:00")
    kept = latest_scan(template_ami)
    assert kept is not None and "DSA-5003-1" in {f["vulnerabilityId"] for f in kept.findings}


def test_patch_status_of_an_image_against_a_loopback_security_mirror(
        kiln: Kiln, template_ami: str, http_server: LoopbackServer) -> None:
    config.set_mirror("debian-security", http_server.url)
    index = "".join(f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n\n" for name, version, arch in [
        ("libssl3", "3.0.11-1~deb12u2", "amd64"), ("bash", "5.2.15-2+b2", "amd64"), ("zlib1g", "1:1.3", "amd64")])
    http_server.files["/dists/bookworm-security/main/binary-amd64/Packages.xz"] = Served(
        lzma.compress(index.encode()), etag='"v1"')
    done = kiln("image", "patch-status", template_ami, "--output", "json")
    assert done.exit_code == 0, done.stderr
    pending = json.loads(done.stdout)["PendingUpdates"]
    assert [(u["package"]["name"], u["installedVersion"], u["availableVersion"]) for u in pending] == [
        ("libssl3", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2")]
    assert pending[0]["firstSeen"]
    text = kiln("image", "patch-status", template_ami)
    assert "libssl3" in text.stdout and "1 pending security updates" in text.stdout
    missing = kiln("image", "patch-status", "ami-0123456789abcdef0")
    assert missing.exit_code != 0 and "ami-0123456789abcdef0" in missing.stderr and "Traceback" not in missing.stderr
