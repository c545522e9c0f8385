"""The aggregate of a scan that scan gates, ``ListImageScanFindingAggregations`` and EC2's ``ScanResults``
read: counts by severity, the highest severity, the highest severity with a fix available, and since when
fixes have been available (per severity, and the oldest in days).

``summarize(outcome, now=…)`` → ``ScanSummary``. A scan with packages of unknown ecosystems is not
``complete``: its counts are what the known part shows, never a clean bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiln.services.scanning.matching import ScanOutcome
from kiln.services.scanning.severity import LABELS, highest


@dataclass(frozen=True)
class ScanSummary:
    counts: dict[str, int]  # every label of LABELS, zero included
    total: int
    highest_severity: str | None  # None: no findings
    highest_fixable_severity: str | None  # None: no finding has a fix available
    fix_available_since: dict[str, datetime | None]  # per label: the earliest a fix became available
    oldest_days_since_fix_available: int | None
    unknown_ecosystems: list[str]
    complete: bool  # False: some packages could not be checked (no advisory data)

    def as_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts, "total": self.total, "highestSeverity": self.highest_severity,
            "highestFixableSeverity": self.highest_fixable_severity,
            "fixAvailableSince": {label: (when.isoformat() if when else None)
                                  for label, when in self.fix_available_since.items()},
            "oldestDaysSinceFixAvailable": self.oldest_days_since_fix_available,
            "unknownEcosystems": self.unknown_ecosystems, "complete": self.complete,
        }


def summarize(outcome: ScanOutcome, *, now: datetime) -> ScanSummary:
    counts = dict.fromkeys(LABELS, 0)
    since: dict[str, datetime | None] = dict.fromkeys(LABELS)
    for finding in outcome.findings:
        label = finding.severity.label
        counts[label] += 1
        when = finding.fix_available_since
        if finding.fix_available and when is not None and (since[label] is None or when < since[label]):
            since[label] = when
    fixable = [f.severity.label for f in outcome.findings if f.fix_available]
    earliest = min((when for when in since.values() if when is not None), default=None)
    return ScanSummary(
        counts=counts, total=len(outcome.findings),
        highest_severity=highest(f.severity.label for f in outcome.findings),
        highest_fixable_severity=highest(fixable), fix_available_since=since,
        oldest_days_since_fix_available=None if earliest is None else max(0, (now - earliest).days),
        unknown_ecosystems=outcome.unknown_ecosystems, complete=not outcome.unknown,
    )


def ec2_scan_results(summary: ScanSummary, *, scanned_at: datetime) -> dict[str, Any]:
    """EC2's ``ScanResults`` of an image (botocore's ec2 shape): the highest label among EC2's five
    (``UNTRIAGED`` has none there), the scan time, and per label since when a fix has been available."""
    labels = [label for label in LABELS if label != "UNTRIAGED" and summary.counts[label]]
    results: dict[str, Any] = {"FindingScanDate": scanned_at}
    if labels:
        results["HighestFindingSeverityLabel"] = labels[0].lower()
    for label, since in summary.fix_available_since.items():
        if since is not None and label != "UNTRIAGED":
            results[f"{label.title()}FixAvailableSince"] = since
    return results
