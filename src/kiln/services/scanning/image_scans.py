"""Scanning images: ``kiln image scan`` (on demand; new advisory data changes the findings of old images),
a build's scan step and the daily rescan all come here. The scan of an AMI reads its package databases
(``store.image_inventory``), matches them against the imported advisories and keeps the outcome as the
AMI's latest scan (``kiln.store.scans``), which DescribeImages' ``ScanResults``, the findings calls and
allowed-images criteria read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiln.db.base import clock_now
from kiln.errors import InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT
from kiln.services.builds import records
from kiln.services.ec2.callers import principal
from kiln.services.inventory.images import resolve_ami
from kiln.services.scanning.matching import ScanOutcome
from kiln.services.scanning.scans import scan_packages
from kiln.services.scanning.security_suites import PendingReport, pending_updates
from kiln.services.scanning.severity import LABELS
from kiln.services.scanning.summary import ScanSummary, ec2_scan_results
from kiln.store import api as store
from kiln.store import scans as stored
from kiln.store.images import ImageInfo
from kiln.store.package_db import NoPackageDatabase

BUILD_TAG = "Ec2ImageBuilderArn"
COMPLETED, FAILED = "COMPLETED", "FAILED"


@dataclass(frozen=True)
class ImageScan:
    scan: stored.StoredScan
    outcome: ScanOutcome | None
    summary: ScanSummary | None


def _build_of(ami: ImageInfo) -> tuple[str | None, str | None]:
    """(image build ARN, pipeline ARN) of the build that made ``ami`` (by its ``Ec2ImageBuilderArn`` tag)."""
    arn = ami.tags.get(BUILD_TAG)
    if not arn:
        return None, None
    try:
        return arn, records.get_row(arn).pipeline_arn
    except NotFound:
        return arn, None


def scan_ami(ami: ImageInfo, *, image_arn: str | None = None) -> ImageScan:
    """Scan one AMI (as its owner sees it) and keep the outcome as its latest scan. An AMI with no package
    database kiln reads gets a FAILED scan and the error is raised: an unreadable image is never clean."""
    built_by, pipeline = _build_of(ami)
    image_arn = image_arn or built_by
    where = {"image_id": ami.id, "image_arn": image_arn, "pipeline_arn": pipeline, "account": ami.owner_id,
             "region": ami.region}
    try:
        inventory = store.image_inventory(ami.id, ami.region)
    except NoPackageDatabase as error:
        stored.record_scan(**where, status=FAILED, reason=str(error))
        raise
    outcome, summary = scan_packages(list(inventory.packages))
    now = clock_now()
    reason = None if summary.complete else (
        "no advisory data for " + ", ".join(summary.unknown_ecosystems) + ": those packages are unchecked")
    kept = stored.record_scan(
        **where, status=COMPLETED, reason=reason, scanned_at=now,
        findings=[finding.as_json() for finding in outcome.findings], summary=summary.as_json(),
        ec2_results=_ec2_json(summary, now), complete=summary.complete)
    return ImageScan(kept, outcome, summary)


def _ec2_json(summary: ScanSummary, now: Any) -> dict[str, str]:
    return {key: value.isoformat() if hasattr(value, "isoformat") else value
            for key, value in ec2_scan_results(summary, scanned_at=now).items()}


def scan_image(resource: str, region: str, account: str = DEFAULT_ACCOUNT) -> ImageScan:
    """``kiln image scan AMI|IMAGE_ARN``: only the AMI's owner scans it."""
    ami = resolve_ami(resource, region, account or DEFAULT_ACCOUNT)
    if ami.owner_id != (account or DEFAULT_ACCOUNT):
        raise InvalidInput(f"{ami.id} belongs to account {ami.owner_id}; only its owner scans it", location=ami.id)
    return scan_ami(store.get_image(ami.id, region), image_arn=None if resource.startswith("ami-") else resource)


def latest(resource: str, region: str, account: str = DEFAULT_ACCOUNT) -> stored.StoredScan:
    """The latest scan of the AMI ``resource`` names (an AMI id the account may see, or an image build
    ARN: its AMI's scan, or the build's own when its AMI is gone)."""
    if not resource.startswith("ami-"):
        records.check_caller(resource, account or DEFAULT_ACCOUNT)
        scans = [scan for scan in stored.scans_of_build(resource) if scan.scanned_at is not None]
        if scans:
            return scans[0]
    ami = resolve_ami(resource, region, account or DEFAULT_ACCOUNT)
    scan = stored.latest_scan(ami.id)
    if scan is None or scan.scanned_at is None:
        raise InvalidInput(f"{ami.id} has not been scanned; run `kiln image scan {ami.id}`", location=resource)
    return scan


def image_findings(resource: str, region: str, account: str = DEFAULT_ACCOUNT, *, severity: str | None = None,
                   fix_available: bool = False) -> tuple[stored.StoredScan, list[dict[str, Any]]]:
    """``kiln image findings``: the latest scan and its findings, highest severity first."""
    wanted = None
    if severity is not None:
        wanted = severity.upper()
        if wanted not in LABELS:
            raise InvalidInput(f"severity {severity!r} is not one of {', '.join(LABELS)}", location="--severity")
    scan = latest(resource, region, account)
    found = [f for f in scan.findings if (wanted is None or f["severity"] == wanted)
             and (not fix_available or f["fixAvailable"] == "YES")]
    found.sort(key=lambda f: (LABELS.index(f["severity"]), f["package"]["name"], f["vulnerabilityId"]))
    return scan, found


def scan_available_images(region: str) -> dict[str, str]:
    """The scheduler's daily rescan: every available AMI of the region, each by its owner. AMI id -> the
    outcome (``COMPLETED`` or the reason it failed)."""
    done: dict[str, str] = {}
    for ami in store.describe_images(region, filters={"state": ["available"]}):
        try:
            scan_ami(ami)
            done[ami.id] = COMPLETED
        except InvalidInput as error:
            done[ami.id] = f"{FAILED}: {error}"
    return done


def get_image_findings(image_id: str, region: str, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """EC2 ``GetImageFindings``: the findings of an AMI the caller may use (own, shared or public); an AMI
    never scanned has none. Paging is the protocol layer's."""
    ami = resolve_ami(image_id, region, account or DEFAULT_ACCOUNT)
    scan = stored.latest_scan(ami.id)
    if scan is None or scan.scanned_at is None:
        return {"ImageFindings": []}
    snapshot = ami.snapshot_ids[0] if ami.snapshot_ids else None
    found = []
    for finding in scan.findings:
        package = finding["package"]
        entry: dict[str, Any] = {
            "FixAvailable": finding["fixAvailable"] == "YES", "FirstObservedAt": scan.scanned_at,
            "UpdatedAt": scan.scanned_at,
            "Title": f"{finding['vulnerabilityId']} - {package['name']} {package['version']}",
            "Paths": [f"{package['ecosystem']}/{package['name']}@{package['version']}"],
        }
        if finding["severity"] != "UNTRIAGED":
            entry["SeverityLabel"] = finding["severity"].lower()
        if finding.get("cvssScore") is not None:
            entry["Score"] = finding["cvssScore"]
        if snapshot:
            entry["SnapshotId"] = snapshot
        found.append(entry)
    return {"ImageFindings": found}


def image_patch_status(resource: str, region: str, account: str = DEFAULT_ACCOUNT,
                       progress_for: Callable[[str], Any] = lambda url: None) -> PendingReport:
    """``kiln image patch-status``: the image's packages with a newer version in their release's security
    suite (independent of advisory data), and since when kiln has seen it."""
    ami = resolve_ami(resource, region, account or DEFAULT_ACCOUNT)
    inventory = store.image_inventory(ami.id, region, principal(account or DEFAULT_ACCOUNT))
    return pending_updates(list(inventory.packages), progress_for=progress_for)
