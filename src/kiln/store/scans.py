"""Each AMI's latest vulnerability scan, as the store keeps it (table ``image_scans``).

The services scan (``kiln.services.scanning.image_scans``) and hand the result here; DescribeImages
reads ``ScanResults`` back in one query per call (``scan_results_by_image``), allowed-images criteria
judge them. Never scanned: no row, no ``ScanResults``. A row may also stand for an image build whose
AMI does not exist (yet, or any more after a failed scan gate): Image Builder keeps its findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.db.engine import session
from kiln.db.tables.scans import ImageScanRow

EC2_LABELS = ("Critical", "High", "Medium", "Low", "Informational")  # ScanResults' <Label>FixAvailableSince


def _ec2_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class ScanResults:
    """EC2's ``ScanResults`` of an AMI: its last scan, its highest severity (lower case; None without
    findings) and per label (``Critical`` … ``Informational``) the earliest a fix became available."""

    finding_scan_date: datetime
    highest_severity: str | None = None
    fix_available_since: dict[str, datetime] = field(default_factory=dict)

    def to_ec2(self) -> dict[str, str]:
        data = {"FindingScanDate": _ec2_time(self.finding_scan_date)}
        if self.highest_severity:
            data["HighestFindingSeverityLabel"] = self.highest_severity
        for label in EC2_LABELS:
            if label in self.fix_available_since:
                data[f"{label}FixAvailableSince"] = _ec2_time(self.fix_available_since[label])
        return data

    @classmethod
    def of(cls, results: dict[str, Any]) -> ScanResults:
        """From the stored EC2 dict (``kiln.services.scanning.summary.ec2_scan_results``, times as text)."""
        since = {label: _parse(results[f"{label}FixAvailableSince"]) for label in EC2_LABELS
                 if results.get(f"{label}FixAvailableSince")}
        return cls(_parse(results["FindingScanDate"]), results.get("HighestFindingSeverityLabel"), since)


@dataclass(frozen=True)
class StoredScan:
    image_id: str | None
    image_arn: str | None
    pipeline_arn: str | None
    account: str
    region: str
    status: str
    reason: str | None
    scanned_at: datetime | None
    findings: list[dict[str, Any]]
    summary: dict[str, Any]
    results: ScanResults | None
    complete: bool


def _of(row: ImageScanRow) -> StoredScan:
    return StoredScan(row.image_id, row.image_arn, row.pipeline_arn, row.account, row.region, row.status,
                      row.reason, row.scanned_at, list(row.findings or []), dict(row.summary or {}),
                      ScanResults.of(row.ec2_results) if row.ec2_results else None, row.complete)


def scan_results_by_image(db: Session, image_ids: Any) -> dict[str, ScanResults]:
    """The ScanResults of the given AMIs (a list of ids or a select of ids) that have a completed scan."""
    query = select(ImageScanRow.image_id, ImageScanRow.ec2_results).where(
        ImageScanRow.image_id.in_(image_ids), ImageScanRow.ec2_results.is_not(None))
    return {image: ScanResults.of(results) for image, results in db.execute(query) if results}


def _row_for(db: Session, image_id: str | None, image_arn: str | None) -> ImageScanRow | None:
    if image_id is not None:
        row = db.scalar(select(ImageScanRow).where(ImageScanRow.image_id == image_id))
        if row is not None:
            return row
    if image_arn is not None:
        # a row the build made before its AMI existed
        return db.scalar(select(ImageScanRow).where(ImageScanRow.image_arn == image_arn,
                                                    ImageScanRow.image_id.is_(None)))
    return None


def record_scan(*, image_id: str | None, image_arn: str | None, pipeline_arn: str | None, account: str,
                region: str, status: str, reason: str | None = None, scanned_at: datetime | None = None,
                findings: list[dict[str, Any]] | None = None, summary: dict[str, Any] | None = None,
                ec2_results: dict[str, Any] | None = None, complete: bool = False) -> StoredScan:
    """Keep this as the latest scan of the AMI (or of the image build when it has no AMI)."""
    if image_id is None and image_arn is None:
        raise ValueError("a scan belongs to an AMI or an image build")
    with session() as db:
        row = _row_for(db, image_id, image_arn)
        if row is None:
            row = ImageScanRow(image_id=image_id, findings=[], summary={}, complete=False)
            db.add(row)
        row.image_id = image_id
        row.image_arn = image_arn or row.image_arn
        row.pipeline_arn = pipeline_arn or row.pipeline_arn
        row.account, row.region, row.status, row.reason = account, region, status, reason
        if scanned_at is not None:
            row.scanned_at = scanned_at
            row.findings = findings or []
            row.summary = summary or {}
            row.ec2_results = ec2_results
            row.complete = complete
        db.flush()
        return _of(row)


def request_scan(image_arn: str, *, account: str, region: str, pipeline_arn: str | None,
                 config: dict[str, Any]) -> None:
    """A new image build will be scanned (its ``imageScanningConfiguration``): scanState PENDING."""
    with session() as db:
        db.add(ImageScanRow(image_id=None, image_arn=image_arn, pipeline_arn=pipeline_arn, account=account,
                            region=region, status="PENDING", findings=[], summary={}, complete=False,
                            config=config))


def scan_request(image_arn: str) -> dict[str, Any] | None:
    """The scanning configuration an image build was started with (None: no scan step)."""
    with session() as db:
        return db.scalar(select(ImageScanRow.config).where(ImageScanRow.image_arn == image_arn,
                                                           ImageScanRow.config.is_not(None)).limit(1))


def set_state(image_arn: str, status: str, reason: str | None = None) -> None:
    """The scan state of an image build's pending scan (ABANDONED when the build ended first)."""
    with session() as db:
        for row in db.scalars(select(ImageScanRow).where(ImageScanRow.image_arn == image_arn,
                                                         ImageScanRow.scanned_at.is_(None))):
            row.status, row.reason = status, reason


def forget_image(image_id: str) -> None:
    """The AMI is gone (a failed gate removed it): its scan stays as the image build's."""
    with session() as db:
        row = db.scalar(select(ImageScanRow).where(ImageScanRow.image_id == image_id))
        if row is not None and row.image_arn:
            row.image_id = None
            row.ec2_results = None


def latest_scan(image_id: str) -> StoredScan | None:
    with session() as db:
        row = db.scalar(select(ImageScanRow).where(ImageScanRow.image_id == image_id))
        return _of(row) if row is not None else None


def scans_of_build(image_arn: str) -> list[StoredScan]:
    """The scans of an image build's AMIs (or of the build itself), newest first."""
    with session() as db:
        rows = db.scalars(select(ImageScanRow).where(ImageScanRow.image_arn == image_arn)
                          .order_by(ImageScanRow.scanned_at.desc(), ImageScanRow.id))
        return [_of(row) for row in rows]


def scans_of_account(account: str) -> list[StoredScan]:
    with session() as db:
        rows = db.scalars(select(ImageScanRow).where(ImageScanRow.account == account).order_by(ImageScanRow.id))
        return [_of(row) for row in rows]


def scan_states(db: Session, image_arns: list[str]) -> dict[str, tuple[str, str | None]]:
    """image build ARN -> (status, reason) of its latest scan."""
    found: dict[str, tuple[str, str | None]] = {}
    query = select(ImageScanRow.image_arn, ImageScanRow.status, ImageScanRow.reason).where(
        ImageScanRow.image_arn.in_(image_arns)).order_by(ImageScanRow.scanned_at, ImageScanRow.id)
    for arn, status, reason in db.execute(query):
        found[arn] = (status, reason)
    return found
