"""Image Builder's findings calls over kept scans: ``ListImageScanFindings`` (``ImageScanFinding`` shapes,
one filter with one value: imageBuildVersionArn, imagePipelineArn, vulnerabilityId, severity, and kiln's
fixAvailable) and ``ListImageScanFindingAggregations`` (counts per account, image, pipeline or
vulnerability), and an image's ``scanState``. Only scans of image builds count (an AMI kiln did not
build has no imageBuildVersionArn); paging is the protocol layer's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kiln.errors import InvalidInput
from kiln.home import DEFAULT_ACCOUNT
from kiln.store import scans as stored

FINDING_FILTERS = ("imageBuildVersionArn", "imagePipelineArn", "vulnerabilityId", "severity", "fixAvailable")
AGGREGATION_FILTERS = ("imageBuildVersionArn", "imagePipelineArn", "vulnerabilityId")
SOURCE_URLS = {"DSA-": "https://security-tracker.debian.org/tracker/", "DLA-": "https://security-tracker.debian.org/tracker/",
               "CVE-": "https://security-tracker.debian.org/tracker/", "USN-": "https://ubuntu.com/security/notices/",
               "ALPINE-": "https://security.alpinelinux.org/vuln/"}


def _one_filter(filters: Any, allowed: tuple[str, ...], field: str) -> tuple[str, str] | None:
    if not filters:
        return None
    if isinstance(filters, dict):
        filters = [filters]
    if not isinstance(filters, list) or len(filters) != 1 or not isinstance(filters[0], dict):
        raise InvalidInput("give exactly one filter {name, values}", location=field)
    name, values = filters[0].get("name"), filters[0].get("values")
    if name not in allowed:
        raise InvalidInput(f"filter name {name!r} is not one of {', '.join(allowed)}", location=f"{field}.name")
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str) or not values[0]:
        raise InvalidInput(f"filter {name} takes exactly one value", location=f"{field}.values")
    return name, values[0]


def _build_scans(account: str) -> list[stored.StoredScan]:
    return [scan for scan in stored.scans_of_account(account or DEFAULT_ACCOUNT)
            if scan.image_arn and scan.scanned_at is not None]


def finding_shape(scan: stored.StoredScan, finding: dict[str, Any]) -> dict[str, Any]:
    """One kept finding as Image Builder's ``ImageScanFinding``."""
    package = finding["package"]
    vulnerable: dict[str, Any] = {"name": package["name"], "version": package["version"],
                                  "arch": package["architecture"], "packageManager": package["ecosystem"]}
    if finding.get("fixedVersion"):
        vulnerable["fixedInVersion"] = finding["fixedVersion"]
        vulnerable["remediation"] = f"upgrade {package['source_name']} to {finding['fixedVersion']} or later"
    details: dict[str, Any] = {"vulnerabilityId": finding["vulnerabilityId"], "vulnerablePackages": [vulnerable],
                               "source": finding["source"], "vendorSeverity": finding["severity"]}
    if finding.get("aliases"):
        details["relatedVulnerabilities"] = finding["aliases"]
    for prefix, url in SOURCE_URLS.items():
        if finding["vulnerabilityId"].startswith(prefix):
            details["sourceUrl"] = url + finding["vulnerabilityId"]
    if finding.get("cvssScore") is not None:
        details["cvss"] = [{"baseScore": finding["cvssScore"], "scoringVector": finding.get("cvssVector") or "",
                            "version": "3.1", "source": finding["source"]}]
    title = f"{finding['vulnerabilityId']} - {package['source_name']}"
    shape: dict[str, Any] = {
        "awsAccountId": scan.account, "imageBuildVersionArn": scan.image_arn, "type": "PACKAGE_VULNERABILITY",
        "title": title, "description": finding.get("summary") or title, "severity": finding["severity"],
        "firstObservedAt": scan.scanned_at.isoformat(), "updatedAt": scan.scanned_at.isoformat(),
        "packageVulnerabilityDetails": details, "fixAvailable": finding["fixAvailable"],
        "remediation": {"recommendation": {"text": vulnerable.get("remediation", "no fix is available yet")}},
    }
    if scan.pipeline_arn:
        shape["imagePipelineArn"] = scan.pipeline_arn
    if finding.get("cvssScore") is not None:
        shape["inspectorScore"] = finding["cvssScore"]
    return shape


def _keep(scan: stored.StoredScan, finding: dict[str, Any], wanted: tuple[str, str] | None) -> bool:
    if wanted is None:
        return True
    name, value = wanted
    if name == "imageBuildVersionArn":
        return scan.image_arn == value
    if name == "imagePipelineArn":
        return scan.pipeline_arn == value
    if name == "vulnerabilityId":
        return value == finding["vulnerabilityId"] or value in finding.get("aliases", [])
    if name == "severity":
        return finding["severity"] == value
    return finding["fixAvailable"] == value


def list_image_scan_findings(filters: Any = None, *, account: str = DEFAULT_ACCOUNT) -> list[dict[str, Any]]:
    wanted = _one_filter(filters, FINDING_FILTERS, "filters")
    return [finding_shape(scan, finding) for scan in _build_scans(account) for finding in scan.findings
            if _keep(scan, finding, wanted)]


def _counts(findings: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = {"all": 0, "critical": 0, "high": 0, "medium": 0}
    for finding in findings:
        counts["all"] += 1
        label = finding["severity"].lower()
        if label in counts:
            counts[label] += 1
    return counts


def list_image_scan_finding_aggregations(filter: Any = None, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """``{aggregationType, responses}``: with no filter one count for the account; with a filter, counts
    per key of the kind named (an image for imageBuildVersionArn, a pipeline, a vulnerability)."""
    wanted = _one_filter(filter, AGGREGATION_FILTERS, "filter")
    scans = _build_scans(account)
    if wanted is None:
        counts = _counts(f for scan in scans for f in scan.findings)
        return {"aggregationType": "accountId", "responses": [
            {"accountAggregation": {"accountId": account or DEFAULT_ACCOUNT, "severityCounts": counts}}]}
    name, value = wanted
    chosen = [(scan, f) for scan in scans for f in scan.findings if _keep(scan, f, wanted)]
    if name == "imageBuildVersionArn":
        shape = {"imageAggregation": {"imageBuildVersionArn": value,
                                      "severityCounts": _counts(f for _, f in chosen)}}
    elif name == "imagePipelineArn":
        shape = {"imagePipelineAggregation": {"imagePipelineArn": value,
                                              "severityCounts": _counts(f for _, f in chosen)}}
    else:
        shape = {"vulnerabilityIdAggregation": {"vulnerabilityId": value,
                                                "severityCounts": _counts(f for _, f in chosen)}}
    return {"aggregationType": name, "responses": [shape]}
