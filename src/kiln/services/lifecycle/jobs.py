"""Enabled lifecycle policies run daily from ``kiln scheduler`` (00:00 UTC), as Image Builder's do."""

from __future__ import annotations

from datetime import datetime
from typing import Any

DAILY = "cron(0 0 * * ? *)"
KEY_PREFIX = "lifecycle:"


def scheduler_jobs() -> list[Any]:
    from kiln.schedule.scheduler import Job
    from kiln.services.lifecycle.policies import list_policies

    return [
        Job(
            key=KEY_PREFIX + policy.arn,
            schedule=DAILY,
            timezone="UTC",
            enabled=policy.status.value == "ENABLED",
            target=run_due,
        )
        for policy in list_policies()
    ]


def run_due(key: str, due_iso: str) -> None:
    """In a scheduler worker: run the policy as of its due time (idempotent, lease-guarded)."""
    from kiln.services.lifecycle.runner import run

    run(key.removeprefix(KEY_PREFIX), as_of=datetime.fromisoformat(due_iso))
