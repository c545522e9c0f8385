"""Pipelines across real processes: one build at a time between processes, the detached worker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.pipelines.conftest import AMI, StandInRunner, component, infrastructure, pipeline, recipe

from kiln.services import images
from kiln.services.pipeline_jobs import pipeline_jobs, start
from kiln.services.pipeline_runs import PipelineBusy, list_pipeline_executions, start_image_pipeline_execution
from kiln.services.pipelines import get_image_pipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def nightly() -> str:
    component("app", "1.0.0")
    return pipeline("nightly", recipe("web", "1.0.0", AMI, ["component/app/1.0.0"]), infrastructure(),
                    schedule={"scheduleExpression": "cron(0 3 * * ? *)",
                              "pipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY"})


def wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    for _ in range(600):
        if path.exists() or process.poll() is not None:
            break
        time.sleep(0.05)
    assert path.exists(), process.communicate(timeout=5)


def test_another_process_cannot_start_while_a_build_runs(nightly: str, tmp_path: Path) -> None:
    ready, go = tmp_path / "ready", tmp_path / "go"
    script = textwrap.dedent(f"""
        import pathlib, time
        from kiln.services import images
        from kiln.services.pipeline_runs import start_image_pipeline_execution

        def blocking_runner(image_arn, *, pipeline_version, progress):
            images.set_status(image_arn, "BUILDING")
            pathlib.Path({str(ready)!r}).touch()
            while not pathlib.Path({str(go)!r}).exists():
                time.sleep(0.05)
            images.finish_available(image_arn, [])

        print(start_image_pipeline_execution({{"imagePipelineArn": {nightly!r}}}, runner=blocking_runner)
              ["imageBuildVersionArn"])
    """)
    other = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(ready, other)
        with pytest.raises(PipelineBusy):
            start_image_pipeline_execution({"imagePipelineArn": nightly}, runner=StandInRunner())
    finally:
        go.touch()
        out, err = other.communicate(timeout=60)
    assert other.returncode == 0, err
    first = out.strip()
    assert images.get_row(first).status == "AVAILABLE"
    second = start_image_pipeline_execution({"imagePipelineArn": nightly}, runner=StandInRunner())
    assert second["imageBuildVersionArn"] != first


def test_scheduler_start_runs_the_build_in_a_worker(nightly: str) -> None:
    [job] = pipeline_jobs()
    execution = start(job, datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
    assert execution.decision == "STARTED"
    assert execution.image_arn is not None
    # The worker is a child of this process: wait for it by its pid.
    row = images.get_row(execution.image_arn)
    for _ in range(1200):
        row = images.get_row(execution.image_arn)
        if row.status in images.FINAL:
            break
        time.sleep(0.05)
    assert row.owner_pid != os.getpid()  # the worker claimed the build
    os.waitpid(row.owner_pid, 0)
    # Without a store/engine the real build fails (no such parent AMI here): recorded and counted.
    [record] = list_pipeline_executions(nightly)
    assert (record["trigger"], record["decision"], record["outcome"]) == ("SCHEDULE", "STARTED", "FAILED")
    assert get_image_pipeline(nightly)["imagePipeline"]["consecutiveFailures"] == 1
