"""Builds that run in the scheduler's worker pool: CreateImage and StartImagePipelineExecution as the API
answers them (at once, with the PENDING image), and the scheduler's side that starts them.

``create_image`` / ``start_pipeline_execution`` record the PENDING image and put it in ``build_queue``.
On every tick the scheduler calls :func:`start_queued`: each queued image that is still PENDING is
claimed (``schedule.claims``: key ``image-build:<arn>``, due time the image's creation time, so it
starts once across schedulers sharing the database) and handed to a worker as :func:`run_queued`,
which takes the image over (its owner is the worker from then on, so recovery fails it if the worker
dies) and builds it: BUILDING … AVAILABLE or FAILED. An image queued by a process that stopped before
a worker took it is failed by start-up recovery like any build whose process died.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

KEY_PREFIX = "image-build:"
Submit = Callable[..., object]


def queue(image_arn: str) -> None:
    """Put a PENDING image in the queue (again: no-op)."""
    from sqlalchemy.exc import IntegrityError

    from kiln.db.base import utcnow
    from kiln.db.engine import session
    from kiln.db.tables.requests import QueuedBuild

    try:
        with session() as db:
            if db.get(QueuedBuild, image_arn) is None:
                db.add(QueuedBuild(image_arn=image_arn, queued_at=utcnow()))
    except IntegrityError:  # queued by a concurrent retry
        pass


def create_image(body: dict[str, Any], *, account: str, region: str) -> dict[str, Any]:
    """CreateImage: the image of a recipe on an infrastructure configuration, built by a worker."""
    from kiln.errors import InvalidInput, InvalidRequest
    from kiln.model.shapes import new_client_token, new_request_id
    from kiln.services.builds.intake import record_image
    from kiln.services.scanning import build_step

    if body.get("containerRecipeArn") and body.get("imageRecipeArn"):
        raise InvalidRequest("give imageRecipeArn or containerRecipeArn, not both", location="containerRecipeArn")
    recipe_field = "containerRecipeArn" if body.get("containerRecipeArn") else "imageRecipeArn"
    for field in (recipe_field, "infrastructureConfigurationArn"):
        if not body.get(field):
            raise InvalidInput(f"{field} is required", location=field)
    tests = body.get("imageTestsConfiguration") or {}
    scanning = build_step.scanning_config(body.get("imageScanningConfiguration"),
                                          tests_enabled=tests.get("imageTestsEnabled", True))
    arn = record_image(
        recipe_arn=body[recipe_field], container=recipe_field == "containerRecipeArn",
        infrastructure_arn=body["infrastructureConfigurationArn"],
        distribution_arn=body.get("distributionConfigurationArn"),
        tests_enabled=tests.get("imageTestsEnabled", True), tests_timeout_minutes=tests.get("timeoutMinutes", 720),
        enhanced_metadata=body.get("enhancedImageMetadataEnabled", True), tags=body.get("tags"), region=region,
        account=account, workflows=body.get("workflows"), execution_role=body.get("executionRole"),
    )
    build_step.request_scan(arn, scanning, account=account, region=region)
    queue(arn)
    return {"requestId": new_request_id(), "clientToken": body.get("clientToken") or new_client_token(),
            "imageBuildVersionArn": arn}


def start_pipeline_execution(body: dict[str, Any], *, account: str) -> dict[str, Any]:
    """StartImagePipelineExecution of ``account``'s pipeline: the execution is recorded and its image
    queued for a worker."""
    from kiln.services.pipelines.runs import start_image_pipeline_execution

    answer = start_image_pipeline_execution(body, wait=False, caller=account)
    queue(answer["imageBuildVersionArn"])
    return answer


def start_queued(submit: Submit, holder: str) -> list[str]:
    """Hand every queued PENDING image to ``submit(run_queued, key, due_iso)`` once; returns their ARNs."""
    from sqlalchemy import delete, select

    from kiln.db.engine import session
    from kiln.db.tables.images import ImageBuild
    from kiln.db.tables.requests import QueuedBuild
    from kiln.schedule.claims import claim_due_run

    with session() as db:
        rows = db.execute(
            select(QueuedBuild.image_arn, ImageBuild.status, ImageBuild.date_created)
            .outerjoin(ImageBuild, ImageBuild.arn == QueuedBuild.image_arn)
            .order_by(QueuedBuild.queued_at)
        ).all()
    started, done = [], []
    for arn, status, created in rows:
        if status == "PENDING" and claim_due_run(KEY_PREFIX + arn, created, holder):
            submit(run_queued, KEY_PREFIX + arn, created.isoformat())
            started.append(arn)
        done.append(arn)  # started here, claimed by another scheduler, or no longer waiting
    if done:
        with session() as db:
            db.execute(delete(QueuedBuild).where(QueuedBuild.image_arn.in_(done)))
    return started


def _say(line: str) -> None:
    if not line.startswith("    "):  # the build's steps, not every line its components print
        print(f"kiln: {line}", file=sys.stderr, flush=True)


def run_queued(key: str, due_iso: str) -> None:
    """In a scheduler worker: take the image over and build it here."""
    from kiln.errors import KilnError
    from kiln.runtime import procs
    from kiln.services.builds import records
    from kiln.services.builds.container import is_container_image

    arn = key.removeprefix(KEY_PREFIX)
    me = procs.current()
    records.update(arn, owner_pid=me.pid, owner_start=me.start_time)
    row = records.get_row(arn)
    if row.status != "PENDING":
        return
    try:
        if row.pipeline_arn:
            _run_pipeline_image(arn)
        elif is_container_image(row.recipe_arn):
            from kiln.services.builds.container import ContainerBuild

            ContainerBuild(arn, progress=_say).run()
        else:
            from kiln.services.builds.workflow import Build

            Build(arn, progress=_say).run()
    except KilnError as error:  # the build recorded its failure on the image
        _say(f"{arn}: {error}")


def _run_pipeline_image(arn: str) -> None:
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.pipelines import PipelineExecutionRow
    from kiln.services.pipelines.runs import Execution, execute

    with session() as db:
        row = db.scalars(select(PipelineExecutionRow).where(PipelineExecutionRow.image_arn == arn)).first()
        if row is None:
            raise LookupError(f"no pipeline execution records image {arn}")
        execution = Execution(row.id, row.pipeline_arn, row.trigger, row.decision, row.reason, row.image_arn,
                              row.pipeline_version)
    execute(execution, progress=_say)



# --- builds ``kiln apply`` started (its Image kind) --------------------------------------------------


def build_here(arn: str, progress: Callable[[str], None]) -> dict[str, Any]:
    """Build a PENDING image in this process (``kiln apply --wait``): the final Image shape; a failed
    build is answered FAILED, not raised (the caller decides what a failure means)."""
    from kiln.errors import KilnError
    from kiln.services.builds import records
    from kiln.services.builds.container import ContainerBuild, is_container_image
    from kiln.services.builds.workflow import Build

    row = records.get_row(arn)
    try:
        if is_container_image(row.recipe_arn):
            ContainerBuild(arn, progress=progress).run()
        else:
            Build(arn, progress=progress).run()
    except KilnError as error:
        progress(f"{arn}: {error}")
    return records.get_image(arn)


def build_detached(arn: str, *, takeover_seconds: float = 60.0) -> int:
    """Hand a PENDING image to a worker process of its own, which outlives this one (``kiln apply``
    without ``--wait``), once that worker has taken the image over; returns its pid. Its output goes
    to ``worker.log`` in the image's log directory."""
    import os
    import subprocess
    import time

    from kiln.errors import KilnError
    from kiln.home import logs_dir
    from kiln.services.builds import records

    log_dir = logs_dir() / "images" / arn.split(":image/", 1)[1].replace("/", "_")
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "worker.log", "ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "kiln.services.build_queue", arn], stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log, start_new_session=True, env=dict(os.environ))
    deadline = time.monotonic() + takeover_seconds
    while records.get_row(arn).owner_pid != worker.pid:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise KilnError(f"the build worker of {arn} did not start", hint=f"see {log_dir / 'worker.log'}")
        time.sleep(0.05)
    return worker.pid


def wait_for(arn: str, *, poll_seconds: float = 1.0) -> dict[str, Any]:
    """The image once it is AVAILABLE, FAILED or CANCELLED (another process builds it)."""
    import time

    from kiln.services.builds import records

    while True:
        image = records.get_image(arn)
        if image["state"]["status"] not in records.ACTIVE:
            return image
        time.sleep(poll_seconds)


if __name__ == "__main__":  # the worker ``build_detached`` starts: build the image named on the command line
    run_queued(KEY_PREFIX + sys.argv[1], "")
