"""Pipelines across real processes: one build at a time between processes, the scheduler's worker."""

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

from kiln.schedule.workers import WorkerPool
from kiln.services.builds import records as images
from kiln.services.pipelines.jobs import scheduler_jobs
from kiln.services.pipelines.resource import get_image_pipeline
from kiln.services.pipelines.runs import PipelineBusy, list_pipeline_executions, start_image_pipeline_execution
from kiln.services.startup import install as worker_initializer

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
        from kiln.services.builds import records as images
        from kiln.services.pipelines.runs import start_image_pipeline_execution

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
    [job] = scheduler_jobs()
    pool = WorkerPool(limit=1, initializer=worker_initializer)
    pool.submit(job.target, job.key, datetime(2026, 12, 1, 3, 0, tzinfo=UTC).isoformat())
    pool.wait(timeout=120)
    [finished] = pool.finished
    assert finished.exitcode == 0
    [execution] = list_pipeline_executions(nightly)
    assert execution["decision"] == "STARTED"
    row = images.get_row(execution["imageArn"])
    assert row.status in images.FINAL
    assert row.owner_pid != os.getpid()  # the worker process built it
    # Without a store/engine the real build fails (no such parent AMI here): recorded and counted.
    [record] = list_pipeline_executions(nightly)
    assert (record["trigger"], record["decision"], record["outcome"]) == ("SCHEDULE", "STARTED", "FAILED")
    assert get_image_pipeline(nightly)["imagePipeline"]["consecutiveFailures"] == 1
