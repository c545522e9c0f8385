"""``kiln image scan|findings``: an image's latest scan kept, its findings filtered, new advisory data
changing an old image's findings, and the errors (never scanned, no package database, bad severity)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import Kiln
from tests.scanning.scan_images import ADVISORIES, LATER, debian_root, import_advisories


@pytest.fixture
def debian_ami(kiln_home: Path, busybox_copy: Callable[[str], Path]) -> str:
    from kiln.store import api

    return api.import_rootfs(debian_root(busybox_copy("debianish")), name="debianish")


def test_scan_keeps_findings_and_filters_them(kiln: Kiln, debian_ami: str, tmp_path: Path) -> None:
    import_advisories(tmp_path / "osv", ADVISORIES)
    never = kiln("image", "findings", debian_ami)
    assert never.exit_code == 1 and "has not been scanned" in never.stderr and "Traceback" not in never.stderr

    done = kiln("image", "scan", debian_ami, "--output", "json")
    assert done.exit_code == 0, done.stderr
    scan = json.loads(done.stdout)
    assert scan["ScanState"] == "COMPLETED" and scan["Summary"]["complete"] is True
    assert scan["ScanResults"]["HighestFindingSeverityLabel"] == "critical"
    assert scan["ScanResults"]["CriticalFixAvailableSince"].startswith("2026-10-01T00:00:00")

    every = json.loads(kiln("image", "findings", debian_ami, "--output", "json").stdout)["Findings"]
    assert [(f["vulnerabilityId"], f["package"]["name"], f["fixAvailable"]) for f in every] == [
        ("DSA-5000-1", "libssl3", "YES"), ("DEBIAN-CVE-2026-0001", "libc6", "NO")]  # bash's binNMU is fixed
    fixable = json.loads(kiln("image", "findings", debian_ami, "--fix-available", "--output", "json").stdout)
    assert [f["vulnerabilityId"] for f in fixable["Findings"]] == ["DSA-5000-1"]
    low = json.loads(kiln("image", "findings", debian_ami, "--severity", "low", "--output", "json").stdout)
    assert [f["vulnerabilityId"] for f in low["Findings"]] == ["DEBIAN-CVE-2026-0001"]
    text = kiln("image", "findings", debian_ami)
    assert "DSA-5000-1" in text.stdout and "no fix yet" in text.stdout and "highest CRITICAL" in text.stdout

    bad = kiln("image", "findings", debian_ami, "--severity", "severe")
    assert bad.exit_code == 1 and "--severity" in bad.stderr and "Traceback" not in bad.stderr


def test_new_advisory_data_changes_an_old_images_findings(kiln: Kiln, debian_ami: str, tmp_path: Path) -> None:
    import_advisories(tmp_path / "osv", ADVISORIES)
    assert kiln("image", "scan", debian_ami).exit_code == 0
    first = json.loads(kiln("image", "findings", debian_ami, "--output", "json").stdout)
    assert "DSA-5003-1" not in {f["vulnerabilityId"] for f in first["Findings"]}

    import_advisories(tmp_path / "osv", [*ADVISORIES, LATER])
    again = kiln("image", "findings", debian_ami, "--output", "json")  # the kept scan: unchanged until rescanned
    assert json.loads(again.stdout)["Findings"] == first["Findings"]
    assert kiln("image", "scan", debian_ami).exit_code == 0
    now = json.loads(kiln("image", "findings", debian_ami, "--output", "json").stdout)
    assert {f["vulnerabilityId"] for f in now["Findings"]} == {"DSA-5000-1", "DEBIAN-CVE-2026-0001", "DSA-5003-1"}
    assert now["Summary"]["counts"]["MEDIUM"] == 1


def test_an_image_without_a_package_database_is_never_clean(kiln: Kiln, kiln_home: Path, busybox_dir: Path) -> None:
    from kiln.store import api
    from kiln.store.scans import latest_scan

    ami = api.import_rootfs(busybox_dir, name="plain-busybox")
    refused = kiln("image", "scan", ami)
    assert refused.exit_code == 1 and "no package database found" in refused.stderr
    kept = latest_scan(ami)
    assert kept is not None and kept.status == "FAILED" and kept.results is None
    assert "ScanResults" not in api.get_image(ami).to_ec2()


def test_unknown_ecosystem_is_incomplete(kiln: Kiln, debian_ami: str, tmp_path: Path) -> None:
    done = kiln("image", "scan", debian_ami, "--output", "json")  # no advisory data imported at all
    assert done.exit_code == 0, done.stderr
    scan = json.loads(done.stdout)
    assert scan["Summary"]["complete"] is False and "Debian:12" in scan["Reason"]
