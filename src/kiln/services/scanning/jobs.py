"""The scheduler's daily rescan (01:00 UTC): every available AMI of every region is scanned again against
the advisory data as it is now, so a new advisory shows on old images (ScanResults, audits, criteria)
without anyone asking. The job exists once advisory data has been imported (``kiln vulndb import|update``):
without any there is nothing to scan against."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from kiln.db.engine import session
from kiln.db.tables.store import StoreImage
from kiln.db.tables.vulndb import VulnSourceRow

DAILY = "cron(0 1 * * ? *)"
KEY = "scanning:daily-rescan"
log = logging.getLogger(__name__)


def scheduler_jobs() -> list[Any]:
    from kiln.schedule.scheduler import Job

    with session() as db:
        if db.scalar(select(VulnSourceRow.name).limit(1)) is None:
            return []
    return [Job(key=KEY, schedule=DAILY, timezone="UTC", target=run_due)]


def rescan_all() -> dict[str, str]:
    """AMI id -> COMPLETED or why its scan failed, over every region."""
    from kiln.services.scanning.image_scans import scan_available_images

    with session() as db:
        regions = sorted(set(db.scalars(select(StoreImage.region).where(StoreImage.state == "available"))))
    done: dict[str, str] = {}
    for region in regions:
        done.update(scan_available_images(region))
    return done


def run_due(key: str, due_iso: str) -> None:
    """In a scheduler worker: the daily rescan."""
    done = rescan_all()
    failed = {ami: why for ami, why in done.items() if why != "COMPLETED"}
    log.info("daily rescan due %s: %d images scanned, %d failed", due_iso, len(done) - len(failed), len(failed))
