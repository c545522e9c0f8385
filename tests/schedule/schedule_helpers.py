"""Helpers imported by scheduler processes in the tests (job source and worker targets)."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime

from kiln.schedule.scheduler import Job


def jobs_from_file() -> list[Job]:
    with open(os.environ["SCHED_JOBS"]) as handle:
        rows = json.load(handle)
    return [
        Job(
            key=row["key"],
            schedule=row["schedule"],
            timezone=row.get("timezone"),
            enabled=row.get("enabled", True),
            not_before=datetime.fromisoformat(row["not_before"]) if row.get("not_before") else None,
            target=globals()[row.get("target", "record_start")],
        )
        for row in rows
    ]


def record_start(key: str, due: str) -> None:
    line = f"{key} {due} {os.getpid()}\n".encode()
    fd = os.open(os.environ["SCHED_STARTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def raise_error(key: str, due: str) -> None:
    raise RuntimeError(f"worker for {key} fails on purpose")


def hard_exit(key: str, due: str) -> None:
    os._exit(1)


def sleep_long(key: str, due: str) -> None:
    time.sleep(120)


def read_starts(path: str) -> list[tuple[str, str]]:
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [tuple(line.split()[:2]) for line in handle if line.strip()]  # type: ignore[misc]
