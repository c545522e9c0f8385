"""One scan against the imported advisory data: what ``kiln vulndb findings`` (and later an image's scan
step) runs. Only the records of the packages' ecosystem families are read."""

from __future__ import annotations

from kiln.db.base import clock_now
from kiln.model.packages import InstalledPackage
from kiln.services.scanning.index import AdvisoryIndex
from kiln.services.scanning.matching import ScanOutcome, scan
from kiln.services.scanning.summary import ScanSummary, summarize


def scan_packages(packages: list[InstalledPackage]) -> tuple[ScanOutcome, ScanSummary]:
    index = AdvisoryIndex.load({package.ecosystem for package in packages if package.ecosystem})
    outcome = scan(packages, db=index)
    return outcome, summarize(outcome, now=clock_now())
