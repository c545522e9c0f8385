"""Schedules: Image Builder cron in a timezone, the job source, one pass of due runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tests.pipelines.conftest import AMI, StandInRunner, component, infrastructure, pipeline, recipe

from kiln.errors import InvalidInput
from kiln.services.pipelines import cron as pipeline_cron
from kiln.services.pipelines.jobs import KEY_PREFIX, due_runs, next_runs, pipeline_jobs
from kiln.services.pipelines.runs import list_pipeline_executions

AFTER = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # a Sunday


def test_cron_expressions_in_timezones() -> None:
    weekdays = pipeline_cron.next_times("cron(0 10 ? * 2-6 *)", "America/Los_Angeles", AFTER, 3)
    assert [(t.day, t.hour, t.tzinfo) for t in weekdays] == [(30, 10, ZoneInfo("America/Los_Angeles")),
                                                             (1, 10, ZoneInfo("America/Los_Angeles")),
                                                             (2, 10, ZoneInfo("America/Los_Angeles"))]
    assert [t.date().isoformat() for t in pipeline_cron.next_times("cron(30 22 ? * tue#2 *)", None, AFTER, 2)] == [
        "2026-12-08", "2027-01-12"]
    assert pipeline_cron.next_after("cron(0 8 L * ? *)", "Etc/UTC", AFTER).date().isoformat() == "2026-11-30"
    assert pipeline_cron.next_after("cron(0 0 1 1 ? 2028)", None, AFTER).year == 2028
    for bad in ("0 10 * * ? *", "cron(0 10 * *)", "cron(0 10 5 * 2 *)", "cron(0 10 ? * 9 *)"):
        with pytest.raises(InvalidInput) as caught:
            pipeline_cron.parse(bad)
        assert caught.value.location == "schedule.scheduleExpression"


@pytest.fixture
def scheduled() -> str:
    component("app", "1.0.0")
    return pipeline("hourly", recipe("web", "1.0.0", AMI, ["component/app/1.0.0"]), infrastructure(),
                    schedule={"scheduleExpression": "cron(15 * * * ? *)", "timezone": "Asia/Kolkata",
                              "pipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY"})


def test_next_runs_of_a_pipeline(scheduled: str) -> None:
    times = next_runs(scheduled, 3, after=AFTER)
    # Kolkata is UTC+05:30: minute 15 local is minute 45 UTC.
    assert [t.astimezone(UTC).strftime("%H:%M") for t in times] == ["12:45", "13:45", "14:45"]


def test_job_source_and_due_runs(scheduled: str) -> None:
    unscheduled = pipeline("manual-only", "image-recipe/web/1.0.0", "infrastructure-configuration/build-infra")
    [job] = pipeline_jobs()
    assert (job.key, job.schedule_expression, job.timezone, job.enabled, job.last_due_run) == (
        KEY_PREFIX + scheduled, "cron(15 * * * ? *)", "Asia/Kolkata", True, None)
    runner = StandInRunner()
    # Two days after creation: 48 missed times, only the latest one runs.
    started = due_runs(datetime.now(UTC) + timedelta(days=2), runner=runner)
    assert [execution.decision for execution in started] == ["STARTED"]
    [job] = pipeline_jobs()
    assert job.last_due_run is not None and job.last_due_run.minute == 45
    assert due_runs(job.last_due_run, runner=runner) == []  # nothing new is due
    [execution] = list_pipeline_executions(scheduled)
    assert execution["trigger"] == "SCHEDULE" and execution["dueTime"].endswith(":45:00.000Z")
    assert list_pipeline_executions(unscheduled) == []
    assert len(runner.calls) == 1
