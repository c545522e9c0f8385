"""Allowed AMIs' ``ScanResultCondition`` judged as EC2 does (every member given must hold; never scanned
fails) against the one clock (KILN_CLOCK), for the account's own AMIs too in kiln's stricter mode."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.scanning.scan_images import ADVISORIES, debian_root, import_advisories

from kiln.home import DEFAULT_ACCOUNT
from kiln.services.ec2 import allowed_images as allowed
from kiln.services.ec2 import images
from kiln.services.ec2.allowed_criteria import scan_mismatch
from kiln.services.scanning.image_scans import scan_image
from kiln.store.scans import ScanResults


@pytest.fixture
def amis(kiln_home: Path, busybox_copy: Callable[[str], Path], tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from kiln.store import api

    import_advisories(tmp_path / "osv", ADVISORIES)
    scanned = api.import_rootfs(debian_root(busybox_copy("scanned")), name="scanned")
    never = api.import_rootfs(debian_root(busybox_copy("never")), name="never")
    monkeypatch.setenv("KILN_CLOCK", "2026-10-20T00:00:00Z")  # the scan: 19 days after the fix shipped
    scan_image(scanned, "local")
    allowed.enable_allowed_images_settings("audit-mode", include_own_images=True, account=DEFAULT_ACCOUNT)
    return {"scanned": scanned, "never": never}


def _verdicts(condition: dict[str, Any]) -> dict[str, bool]:
    allowed.replace_image_criteria([{"ScanResultCondition": condition}], account=DEFAULT_ACCOUNT)
    return {i["Name"]: i["ImageAllowed"] for i in images.describe_images(account=DEFAULT_ACCOUNT)["Images"]}


def test_never_scanned_fails_and_severity_limits(amis: dict[str, str]) -> None:
    assert _verdicts({"MaximumSeverityLabel": "critical"}) == {"scanned": True, "never": False}
    assert _verdicts({"MaximumSeverityLabel": "high"}) == {"scanned": False, "never": False}
    assert _verdicts({"MaxDaysSinceLowFixAvailable": 0}) == {"scanned": True, "never": False}  # low has no fix


def test_days_since_fix_and_since_scan_follow_the_clock(amis: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert _verdicts({"MaxDaysSinceCriticalFixAvailable": 30})["scanned"] is True  # 19 days
    assert _verdicts({"MaxDaysSinceCriticalFixAvailable": 18})["scanned"] is False
    monkeypatch.setenv("KILN_CLOCK", "2026-11-05T00:00:00Z")  # 35 days since the fix, 16 since the scan
    assert _verdicts({"MaxDaysSinceCriticalFixAvailable": 30})["scanned"] is False
    assert _verdicts({"MaxDaysSinceLastFindingScan": 16})["scanned"] is True
    assert _verdicts({"MaxDaysSinceLastFindingScan": 15})["scanned"] is False
    # every member given must hold
    assert _verdicts({"MaxDaysSinceLastFindingScan": 30, "MaximumSeverityLabel": "medium"})["scanned"] is False


def test_own_images_are_exempt_without_the_stricter_mode(amis: dict[str, str]) -> None:
    allowed.enable_allowed_images_settings("audit-mode", include_own_images=False, account=DEFAULT_ACCOUNT)
    assert _verdicts({"MaximumSeverityLabel": "low"}) == {"scanned": True, "never": True}


def test_the_reason_names_the_member() -> None:
    assert scan_mismatch({"MaximumSeverityLabel": "low"}, None, datetime.now(UTC)) == "it has never been scanned"
    results = ScanResults(datetime(2026, 10, 1, tzinfo=UTC), "high", {"High": datetime(2026, 9, 1, tzinfo=UTC)})
    now = datetime(2026, 10, 2, tzinfo=UTC)
    assert "above low" in (scan_mismatch({"MaximumSeverityLabel": "low"}, results, now) or "")
    assert "high finding" in (scan_mismatch({"MaxDaysSinceHighFixAvailable": 7}, results, now) or "")
    assert scan_mismatch({"MaxDaysSinceCriticalFixAvailable": 0, "MaxDaysSinceLastFindingScan": 1}, results,
                         now) is None
