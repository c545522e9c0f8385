"""Pipelines as jobs of the generic scheduler (``kiln.schedule.scheduler``).

``scheduler_jobs`` gives the scheduler one job per pipeline with a ``schedule.scheduleExpression``;
a due job runs :func:`run_due` in a worker process, which decides (dependency updates, one build at a
time, disabled), records the decision and builds (``kiln.services.pipelines.runs.run_scheduled``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiln.db.base import utcnow

KEY_PREFIX = "image-pipeline:"


@dataclass(frozen=True)
class PipelineJob:
    key: str
    schedule_expression: str
    timezone: str | None
    enabled: bool
    last_due_run: datetime | None
    pipeline_arn: str


def pipeline_jobs() -> list[PipelineJob]:
    """Every pipeline that has a schedule."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.pipelines import ImagePipelineRow

    with session() as db:
        jobs = []
        for row in db.scalars(select(ImagePipelineRow).order_by(ImagePipelineRow.arn)):
            schedule = row.body.get("schedule") or {}
            if not schedule.get("scheduleExpression"):
                continue
            jobs.append(
                PipelineJob(
                    key=KEY_PREFIX + row.arn,
                    schedule_expression=schedule["scheduleExpression"],
                    timezone=schedule.get("timezone"),
                    enabled=row.status == "ENABLED",
                    last_due_run=row.last_due_run,
                    pipeline_arn=row.arn,
                )
            )
        return jobs


def start(job: PipelineJob, due_time: datetime, *, runner: Any = None) -> Any:
    """A scheduled run of the job's pipeline, due at ``due_time``, decided, recorded and (when it
    builds) built here before returning."""
    from kiln.services.pipelines.runs import run_scheduled

    return run_scheduled(job.pipeline_arn, due_time, runner=runner, wait=True)


def next_runs(
    pipeline_arn: str, count: int, *, after: datetime | None = None, caller: str | None = None,
    region: str | None = None,
) -> list[datetime]:
    """The pipeline's (``caller``'s when given) next ``count`` scheduled times (in its timezone); []
    without a schedule."""
    from kiln.db.engine import session
    from kiln.services.pipelines import cron as pipeline_cron
    from kiln.services.pipelines.resource import find_pipeline

    with session() as db:
        schedule = find_pipeline(db, pipeline_arn, caller=caller, region=region).body.get("schedule") or {}
    if not schedule.get("scheduleExpression"):
        return []
    return pipeline_cron.next_times(schedule["scheduleExpression"], schedule.get("timezone"), after or utcnow(), count)


def due_runs(now: datetime | None = None, *, runner: Any = None) -> list[Any]:
    """One scheduler pass without the scheduler: start every enabled pipeline job whose next time
    after its last due run has come (the latest such time; missed ones are not replayed)."""
    from kiln.services.pipelines import cron as pipeline_cron
    now = now or utcnow()
    started = []
    for job in pipeline_jobs():
        if not job.enabled:
            continue
        after = job.last_due_run or _created(job.pipeline_arn)
        # After a pause only the latest missed time runs.
        due = pipeline_cron.parse(job.schedule_expression).latest_at_or_before(now, pipeline_cron.zone(job.timezone))
        if due is not None and due > after:
            started.append(start(job, due, runner=runner))
    return started


def _created(pipeline_arn: str) -> datetime:
    from kiln.db.engine import session
    from kiln.services.pipelines.resource import find_pipeline

    with session() as db:
        return find_pipeline(db, pipeline_arn).date_created



def scheduler_jobs() -> list[Any]:
    """The pipelines as ``kiln scheduler`` jobs: each due run goes to a worker process (``run_due``)."""
    from kiln.schedule.scheduler import Job

    return [
        Job(
            key=job.key,
            schedule=job.schedule_expression,
            timezone=job.timezone,
            enabled=job.enabled,
            last_due_run=job.last_due_run,
            target=run_due,
        )
        for job in pipeline_jobs()
    ]


def run_due(key: str, due_iso: str) -> None:
    """In a scheduler worker: decide (dependency updates) and, when due, build in this process, so the
    scheduler's limit on concurrent builds holds."""
    from kiln.services.pipelines.runs import run_scheduled

    run_scheduled(key.removeprefix(KEY_PREFIX), datetime.fromisoformat(due_iso), wait=True)
