"""Starting pipelines: manual starts, one build at a time, scheduled runs, auto-disable, records.

The build engine is the StandInRunner (see conftest); the pipeline logic and the database are real.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.pipelines.conftest import AMI, SELF, StandInRunner, component, infrastructure, pipeline, recipe

from kiln.errors import NotFound
from kiln.services.builds import records as images
from kiln.services.pipelines.resource import get_image_pipeline, list_image_pipeline_images, update_image_pipeline
from kiln.services.pipelines.runs import (
    PipelineBusy,
    list_pipeline_executions,
    run_scheduled,
    start_image_pipeline_execution,
)

DUE = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def nightly() -> str:
    component("app", "1.0.0")
    recipe_arn = recipe("web", "1.0.0", AMI, [f"{SELF}:component/app/1.x.x"])
    return pipeline(
        "nightly", recipe_arn, infrastructure(),
        imageTags={"team": "web"},
        schedule={"scheduleExpression": "cron(0 3 * * ? *)", "pipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY",
                  "autoDisablePolicy": {"failureCount": 2}},
    )


def test_manual_start_builds_and_records(nightly: str, runner: StandInRunner) -> None:
    result = start_image_pipeline_execution({"imagePipelineArn": nightly, "tags": {"run": "1"}}, runner=runner)
    image_arn = result["imageBuildVersionArn"]
    assert image_arn == f"{SELF}:image/web/1.0.0/1"
    assert runner.calls == [{"image": image_arn, "pipeline_version": "1", "tags": {"team": "web", "run": "1"},
                             "pipeline_arn": nightly}]
    assert images.get_row(image_arn).status == "AVAILABLE"
    [execution] = list_pipeline_executions(nightly)
    assert (execution["trigger"], execution["decision"], execution["imageArn"], execution["outcome"]) == (
        "MANUAL", "STARTED", image_arn, "AVAILABLE")
    listed = list_image_pipeline_images(nightly)["imageSummaryList"]
    assert [(s["arn"], s["state"]["status"]) for s in listed] == [(image_arn, "AVAILABLE")]
    got = get_image_pipeline(nightly)["imagePipeline"]
    assert got["lastRunStatus"] == "AVAILABLE"
    assert "dateLastRun" in got


def test_pipeline_version_follows_updates(nightly: str, runner: StandInRunner) -> None:
    body = get_image_pipeline(nightly)["imagePipeline"]
    update_image_pipeline({"imagePipelineArn": nightly, "imageRecipeArn": body["imageRecipeArn"],
                           "infrastructureConfigurationArn": body["infrastructureConfigurationArn"],
                           "description": "now with a description"})
    start_image_pipeline_execution({"imagePipelineArn": nightly}, runner=runner)
    assert runner.calls[0]["pipeline_version"] == "2"
    # The update also dropped imageTags (UpdateImagePipeline replaces the configuration).
    assert runner.calls[0]["tags"] == {}


def test_second_start_while_building_is_refused(nightly: str) -> None:
    refused: list[Exception] = []

    def start_again(_: str) -> None:
        try:
            start_image_pipeline_execution({"imagePipelineArn": nightly}, runner=StandInRunner())
        except PipelineBusy as error:
            refused.append(error)

    first = StandInRunner(during=start_again)
    start_image_pipeline_execution({"imagePipelineArn": nightly}, runner=first)
    assert len(refused) == 1
    assert refused[0].code == "ResourceInUseException"
    assert "already has an execution in progress" in refused[0].message
    assert len(list_image_pipeline_images(nightly)["imageSummaryList"]) == 1
    # Once the first build has finished, the pipeline starts again.
    again = start_image_pipeline_execution({"imagePipelineArn": nightly}, runner=StandInRunner())
    assert again["imageBuildVersionArn"].endswith("/1.0.0/2")


def test_scheduled_run_while_building_is_skipped(nightly: str) -> None:
    skipped = []
    first = StandInRunner(during=lambda _: skipped.append(run_scheduled(nightly, DUE, runner=StandInRunner())))
    start_image_pipeline_execution({"imagePipelineArn": nightly}, runner=first)
    assert skipped[0].decision == "SKIPPED"
    assert "in progress" in (skipped[0].reason or "")


def test_client_token_is_idempotent(nightly: str, runner: StandInRunner) -> None:
    first = start_image_pipeline_execution({"imagePipelineArn": nightly, "clientToken": "tok-1"}, runner=runner)
    second = start_image_pipeline_execution({"imagePipelineArn": nightly, "clientToken": "tok-1"}, runner=runner)
    assert first["imageBuildVersionArn"] == second["imageBuildVersionArn"]
    assert len(runner.calls) == 1


def test_auto_disable_after_consecutive_scheduled_failures(nightly: str) -> None:
    failing = StandInRunner(outcomes=["FAILED", "FAILED", "FAILED", "FAILED"])
    first = run_scheduled(nightly, DUE, runner=failing)
    assert first.decision == "STARTED"
    assert get_image_pipeline(nightly)["imagePipeline"]["consecutiveFailures"] == 1
    # A failed manual run does not count.
    start_image_pipeline_execution({"imagePipelineArn": nightly}, runner=failing)
    assert get_image_pipeline(nightly)["imagePipeline"]["consecutiveFailures"] == 1
    run_scheduled(nightly, DUE.replace(day=2), runner=failing)
    got = get_image_pipeline(nightly)["imagePipeline"]
    assert (got["status"], got["consecutiveFailures"]) == ("DISABLED", 2)
    assert "disabled automatically after 2 consecutive failed scheduled executions" in got["kilnStatusReason"]
    assert "dateNextRun" not in got
    # Disabled: the next scheduled time is recorded as skipped, nothing is built.
    skipped = run_scheduled(nightly, DUE.replace(day=3), runner=failing)
    assert (skipped.decision, skipped.reason) == ("SKIPPED", "the pipeline is DISABLED")
    assert len(failing.calls) == 3
    decisions = [(e["trigger"], e["decision"], e.get("outcome")) for e in list_pipeline_executions(nightly)]
    assert decisions == [("SCHEDULE", "STARTED", "FAILED"), ("MANUAL", "STARTED", "FAILED"),
                         ("SCHEDULE", "STARTED", "FAILED"), ("SCHEDULE", "SKIPPED", None)]


def test_success_resets_the_failure_count(nightly: str) -> None:
    flaky = StandInRunner(outcomes=["FAILED", "AVAILABLE", "FAILED"])
    run_scheduled(nightly, DUE, runner=flaky)
    run_scheduled(nightly, DUE.replace(day=2), runner=flaky)
    assert get_image_pipeline(nightly)["imagePipeline"]["consecutiveFailures"] == 0
    run_scheduled(nightly, DUE.replace(day=3), runner=flaky)
    got = get_image_pipeline(nightly)["imagePipeline"]
    assert (got["status"], got["consecutiveFailures"]) == ("ENABLED", 1)


def test_failed_to_start_counts_and_is_recorded(nightly: str) -> None:
    from kiln.db.engine import session
    from kiln.db.tables.resources import ImageRecipeRow

    with session() as db:  # the recipe vanishes behind the pipeline's back
        for row in db.query(ImageRecipeRow).all():
            db.delete(row)
    execution = run_scheduled(nightly, DUE, runner=StandInRunner())
    assert execution.decision == "FAILED_TO_START"
    assert "does not exist" in (execution.reason or "")
    assert get_image_pipeline(nightly)["imagePipeline"]["consecutiveFailures"] == 1
    with pytest.raises(NotFound):
        start_image_pipeline_execution({"imagePipelineArn": nightly}, runner=StandInRunner())


def test_runner_that_crashes_leaves_a_failed_image(nightly: str) -> None:
    def crash(image_arn: str, *, pipeline_version: str, progress: object) -> None:
        raise RuntimeError("engine exploded")

    result = start_image_pipeline_execution({"imagePipelineArn": nightly}, runner=crash)
    row = images.get_row(result["imageBuildVersionArn"])
    assert (row.status, row.reason) == ("FAILED", "engine exploded")
    assert list_pipeline_executions(nightly)[0]["outcome"] == "FAILED"


def test_start_unknown_pipeline() -> None:
    with pytest.raises(NotFound):
        start_image_pipeline_execution({"imagePipelineArn": "image-pipeline/nope"}, runner=StandInRunner())


def test_delete_is_refused_while_a_build_runs(nightly: str) -> None:
    from kiln.errors import InUse
    from kiln.services.pipelines.resource import delete_image_pipeline

    refused: list[InUse] = []

    def try_delete(image_arn: str) -> None:
        with pytest.raises(InUse) as caught:
            delete_image_pipeline(nightly)
        refused.append(caught.value)

    start_image_pipeline_execution({"imagePipelineArn": nightly}, runner=StandInRunner(during=try_delete))
    assert refused and refused[0].code == "ResourceDependencyException"
    delete_image_pipeline(nightly)
    with pytest.raises(NotFound):
        get_image_pipeline(nightly)
