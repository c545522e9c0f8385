"""Scan results on the wire through boto3 against ``kiln serve``: DescribeImages' ``ScanResults`` and its
``scan-result.*`` filters (also for an account the AMI is shared with), EC2 ``GetImageFindings``, and
Image Builder's ``ListImageScanFindings`` (one filter, pages) and ``ListImageScanFindingAggregations``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server
from tests.scanning.scan_images import ADVISORIES, debian_root, import_advisories

BUILD = "arn:aws:imagebuilder:local:123456789012:image/debianish/1.0.0/1"


@pytest.fixture
def scanned(kiln_home: Path, busybox_copy: Callable[[str], Path], tmp_path: Path) -> dict[str, str]:
    from kiln.services.scanning.image_scans import scan_image
    from kiln.store import api

    import_advisories(tmp_path / "osv", ADVISORIES)
    ami = api.import_rootfs(debian_root(busybox_copy("debianish")), name="debianish",
                            tags={"Ec2ImageBuilderArn": BUILD})
    never = api.import_rootfs(debian_root(busybox_copy("unscanned")), name="unscanned")
    scan_image(ami, "local")
    return {"ami": ami, "never": never}


def _code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def test_scan_results_on_describe_images_and_get_image_findings(server: Server, scanned: dict[str, str]) -> None:
    from kiln.services.accounts.accounts import create_access_key, create_account
    from kiln.services.ec2 import images

    ec2 = server.client("ec2")
    shown = {i["ImageId"]: i for i in ec2.describe_images(Owners=["self"])["Images"]}
    results = shown[scanned["ami"]]["ScanResults"]
    assert results["HighestFindingSeverityLabel"] == "critical"
    assert results["CriticalFixAvailableSince"].isoformat() == "2026-10-01T00:00:00+00:00"
    assert results["FindingScanDate"].tzinfo is not None and "LowFixAvailableSince" not in results
    assert "ScanResults" not in shown[scanned["never"]]
    by_label = ec2.describe_images(Filters=[{"Name": "scan-result.highest-finding-severity-label",
                                             "Values": ["critical"]}])["Images"]
    assert [i["ImageId"] for i in by_label] == [scanned["ami"]]
    by_fix = ec2.describe_images(Filters=[{"Name": "scan-result.critical-fix-available-since",
                                           "Values": ["2026-10-01*"]}])["Images"]
    assert [i["ImageId"] for i in by_fix] == [scanned["ami"]]
    assert _code(ec2.describe_images, Filters=[{"Name": "scan-result.worst", "Values": ["x"]}]) == \
        "InvalidParameterValue"

    findings = ec2.get_image_findings(ImageId=scanned["ami"])["ImageFindings"]
    assert sorted((f.get("SeverityLabel"), f["FixAvailable"]) for f in findings) == [
        ("critical", True), ("low", False)]
    assert ec2.get_image_findings(ImageId=scanned["never"])["ImageFindings"] == []
    paged = ec2.get_image_findings(ImageId=scanned["ami"], MaxResults=1)
    assert len(paged["ImageFindings"]) == 1 and paged["NextToken"]

    other_id = create_account("account-b")["Id"]
    other = server.client("ec2", key=create_access_key(other_id))
    assert _code(other.get_image_findings, ImageId=scanned["ami"]) == "InvalidAMIID.NotFound"
    images.modify_launch_permission(scanned["ami"], add=[{"UserId": other_id}])
    [seen] = other.describe_images(ImageIds=[scanned["ami"]])["Images"]
    assert seen["ScanResults"]["HighestFindingSeverityLabel"] == "critical"
    assert len(other.get_image_findings(ImageId=scanned["ami"])["ImageFindings"]) == 2


def test_list_image_scan_findings_filters_pages_and_aggregations(server: Server, scanned: dict[str, str]) -> None:
    builder = server.client("imagebuilder")
    every = builder.list_image_scan_findings()["findings"]
    assert {f["packageVulnerabilityDetails"]["vulnerabilityId"] for f in every} == {
        "DSA-5000-1", "DEBIAN-CVE-2026-0001"}
    critical = next(f for f in every if f["severity"] == "CRITICAL")
    assert (critical["imageBuildVersionArn"], critical["type"], critical["fixAvailable"]) == (
        BUILD, "PACKAGE_VULNERABILITY", "YES")
    assert critical["packageVulnerabilityDetails"]["vulnerablePackages"][0]["fixedInVersion"] == "3.0.11-1~deb12u2"
    assert critical["packageVulnerabilityDetails"]["relatedVulnerabilities"] == ["CVE-2026-1000"]
    assert critical["inspectorScore"] == 9.8

    def ids(**kwargs: Any) -> list[str]:
        found = builder.list_image_scan_findings(**kwargs)["findings"]
        return [f["packageVulnerabilityDetails"]["vulnerabilityId"] for f in found]

    assert ids(filters=[{"name": "severity", "values": ["LOW"]}]) == ["DEBIAN-CVE-2026-0001"]
    assert ids(filters=[{"name": "vulnerabilityId", "values": ["CVE-2026-1000"]}]) == ["DSA-5000-1"]
    assert len(ids(filters=[{"name": "imageBuildVersionArn", "values": [BUILD]}])) == 2
    assert ids(filters=[{"name": "imageBuildVersionArn", "values": [BUILD.replace("/1.0.0/1", "/1.0.0/2")]}]) == []
    assert ids(filters=[{"name": "fixAvailable", "values": ["NO"]}]) == ["DEBIAN-CVE-2026-0001"]
    assert _code(builder.list_image_scan_findings, filters=[{"name": "colour", "values": ["red"]}]) == \
        "InvalidParameterValueException"

    first = builder.list_image_scan_findings(maxResults=1)
    second = builder.list_image_scan_findings(maxResults=1, nextToken=first["nextToken"])
    assert len(first["findings"]) == len(second["findings"]) == 1 and "nextToken" not in second
    assert first["findings"][0]["title"] != second["findings"][0]["title"]

    account = builder.list_image_scan_finding_aggregations()
    assert account["aggregationType"] == "accountId"
    assert account["responses"][0]["accountAggregation"]["severityCounts"] == {
        "all": 2, "critical": 1, "high": 0, "medium": 0}
    image = builder.list_image_scan_finding_aggregations(filter={"name": "imageBuildVersionArn", "values": [BUILD]})
    assert image["responses"][0]["imageAggregation"]["severityCounts"]["all"] == 2
