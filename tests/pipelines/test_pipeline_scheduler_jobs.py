"""Pipelines and lifecycle policies as jobs of ``kiln scheduler``."""

from __future__ import annotations

from tests.pipelines.conftest import AMI, component, infrastructure, pipeline, recipe

from kiln.services.registry import scheduler_jobs


def test_scheduled_pipelines_and_lifecycle_policies_are_scheduler_jobs() -> None:
    from kiln.services.lifecycle.policies import create_policy, list_executions

    component("app", "1.0.0")
    arn = pipeline("nightly", recipe("web", "1.0.0", AMI, ["component/app/1.0.0"]), infrastructure(),
                   schedule={"scheduleExpression": "cron(0 3 * * ? *)", "timezone": "Europe/Berlin"})
    policy = create_policy({
        "name": "daily-clean", "executionRole": "arn:aws:iam::123456789012:role/lifecycle",
        "resourceType": "AMI_IMAGE",
        "policyDetails": [{"action": {"type": "DEPRECATE"}, "filter": {"type": "AGE", "value": 30, "unit": "DAYS"}}],
        "resourceSelection": {"recipes": [{"name": "web", "semanticVersion": "1.x.x"}]},
    })
    jobs = {job.key: job for job in scheduler_jobs()}
    nightly = next(job for key, job in jobs.items() if key.endswith(arn))
    assert (nightly.schedule, nightly.timezone, nightly.enabled) == ("cron(0 3 * * ? *)", "Europe/Berlin", True)
    daily = jobs[f"lifecycle:{policy}"]
    assert daily.schedule == "cron(0 0 * * ? *)"
    daily.target(daily.key, "2026-11-29T00:00:00+00:00")  # what a scheduler worker runs
    assert [e.state.status.value for e in list_executions(policy)] == ["SUCCESS"]
