"""Pipeline executions: StartImagePipelineExecution, scheduled runs, and what became of them.

Every decision is recorded in ``pipeline_executions`` (trigger MANUAL or SCHEDULE; decision
STARTED, SKIPPED or FAILED_TO_START; the reason; the image). A pipeline runs one build at a time:
starting while one of its images is being built is refused with ResourceInUseException.

The build itself is a *runner* ``runner(image_arn, *, pipeline_version, progress)``; the default is
:class:`kiln.services.builds.workflow.Build`. A runner marks the image AVAILABLE or FAILED (a runner
that raises and leaves the image unfinished gets it marked FAILED here).

``consecutiveFailures`` and ``autoDisablePolicy``: outcomes are read from the images table
(:func:`sync_outcomes`), so a build run by another process counts too. A failed scheduled build
(or a scheduled run that failed to start) adds one; any successful build resets the count; a failed
manual build or a cancelled one leaves it alone. Reaching ``failureCount`` sets the pipeline
DISABLED with the reason recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from kiln.db.base import utcnow
from kiln.errors import Conflict, KilnError
from kiln.model.pipeline import DEFAULT_START_CONDITION, StartImagePipelineExecutionRequest
from kiln.model.shapes import new_client_token, new_request_id, parse_shape
from kiln.services.common.unit import IdempotentParameterMismatch

Progress = Callable[[str], None]
CLAIM_TIMEOUT = timedelta(minutes=10)  # a start that died between claim and image creation


class Runner(Protocol):
    def __call__(self, image_arn: str, *, pipeline_version: str, progress: Progress) -> Any: ...


def build_runner(image_arn: str, *, pipeline_version: str, progress: Progress) -> Any:
    """The real build: Image Builder's build, test and distribution workflows."""
    from kiln.services.builds import records
    from kiln.services.builds.container import ContainerBuild, is_container_image
    from kiln.services.builds.workflow import Build

    if is_container_image(records.get_row(image_arn).recipe_arn):
        return ContainerBuild(image_arn, progress=progress, pipeline_version=pipeline_version).run()
    return Build(image_arn, progress=progress, pipeline_version=pipeline_version).run()


def _quiet(message: str) -> None:
    pass


@dataclass(frozen=True)
class Execution:
    id: str
    pipeline_arn: str
    trigger: str
    decision: str
    reason: str | None
    image_arn: str | None
    pipeline_version: int

    @property
    def started(self) -> bool:
        return self.decision == "STARTED"


def _as_execution(row: Any) -> Execution:
    return Execution(row.id, row.pipeline_arn, row.trigger, row.decision, row.reason, row.image_arn,
                     row.pipeline_version)


class PipelineBusy(Conflict):
    """Image Builder's ResourceInUseException for a second execution of one pipeline."""


# --- records -------------------------------------------------------------------------------------


def _record(db: Any, pipeline: Any, *, trigger: str, decision: str, reason: str | None,
            due_time: datetime | None = None, client_token: str | None = None,
            os_marker: dict[str, str] | None = None) -> Any:
    from kiln.db.tables.pipelines import PipelineExecutionRow

    row = PipelineExecutionRow(
        id=f"pe-{uuid.uuid4()}",
        pipeline_arn=pipeline.arn,
        trigger=trigger,
        due_time=due_time,
        decision=decision,
        reason=reason,
        pipeline_version=pipeline.version,
        client_token=client_token,
        os_marker=os_marker,
        time=utcnow(),
    )
    db.add(row)
    db.flush()
    return row


def _busy_with(db: Any, pipeline_arn: str) -> str | None:
    """The image (or pending start) that makes the pipeline busy, if any."""
    from sqlalchemy import select

    from kiln.db.tables.images import ImageBuild
    from kiln.db.tables.pipelines import PipelineExecutionRow
    from kiln.services.builds.records import ACTIVE

    image = db.scalars(
        select(ImageBuild.arn).where(ImageBuild.pipeline_arn == pipeline_arn, ImageBuild.status.in_(ACTIVE))
    ).first()
    if image is not None:
        return str(image)
    claim = db.scalars(
        select(PipelineExecutionRow).where(
            PipelineExecutionRow.pipeline_arn == pipeline_arn,
            PipelineExecutionRow.decision == "STARTED",
            PipelineExecutionRow.image_arn.is_(None),
            PipelineExecutionRow.time > utcnow() - CLAIM_TIMEOUT,
        )
    ).first()
    return f"a start in progress ({claim.id})" if claim is not None else None


def _disable_if_due(db: Any, pipeline: Any) -> None:
    policy = ((pipeline.body.get("schedule") or {}).get("autoDisablePolicy") or {}).get("failureCount")
    if policy and pipeline.consecutive_failures >= policy and pipeline.status == "ENABLED":
        pipeline.status = "DISABLED"
        pipeline.status_reason = (
            f"disabled automatically after {pipeline.consecutive_failures} consecutive failed scheduled "
            f"executions (autoDisablePolicy.failureCount {policy})"
        )
        pipeline.body = {**pipeline.body, "status": "DISABLED"}
        _record_event(db, pipeline)


def _record_event(db: Any, pipeline: Any) -> None:
    """Image Builder's "Image Pipeline Automatically Disabled" event."""
    from kiln.services.common import events
    events.record_event("EC2 Image Builder Image Pipeline Automatically Disabled", pipeline.arn,
                        {"consecutive-failures": str(pipeline.consecutive_failures)}, db=db)


def sync_outcomes(pipeline_arn: str | None = None) -> None:
    """Copy finished builds' final status onto their executions and keep the failure count."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.images import ImageBuild
    from kiln.db.tables.pipelines import ImagePipelineRow, PipelineExecutionRow
    from kiln.services.builds.records import FINAL

    with session() as db:
        query = select(PipelineExecutionRow).where(
            PipelineExecutionRow.decision == "STARTED",
            PipelineExecutionRow.outcome.is_(None),
            PipelineExecutionRow.image_arn.is_not(None),
        )
        if pipeline_arn is not None:
            query = query.where(PipelineExecutionRow.pipeline_arn == pipeline_arn)
        for execution in db.scalars(query.order_by(PipelineExecutionRow.time)):
            image = db.get(ImageBuild, execution.image_arn)
            status = image.status if image is not None else "DELETED"
            if status not in FINAL:
                continue
            execution.outcome = status
            pipeline = db.scalars(
                select(ImagePipelineRow).where(ImagePipelineRow.arn == execution.pipeline_arn)
            ).first()
            if pipeline is None:
                continue
            if status == "AVAILABLE":
                pipeline.consecutive_failures = 0
            elif status == "FAILED" and execution.trigger == "SCHEDULE":
                pipeline.consecutive_failures += 1
                _disable_if_due(db, pipeline)


# --- starting ------------------------------------------------------------------------------------


def launch(
    pipeline_arn: str,
    *,
    trigger: str,
    reason: str,
    due_time: datetime | None = None,
    tags: dict[str, str] | None = None,
    client_token: str | None = None,
    os_marker: dict[str, str] | None = None,
) -> Execution:
    """Claim the pipeline, create its PENDING image and record the start. PipelineBusy while a build
    of the pipeline runs; a reference that no longer resolves is recorded FAILED_TO_START and raised."""
    from kiln.db.engine import session
    from kiln.services.builds import records as images
    from kiln.services.pipelines.resource import find_pipeline, recipe_of
    from kiln.services.scanning import build_step

    failure: KilnError | None = None
    with session() as db:
        pipeline = find_pipeline(db, pipeline_arn)
        busy = _busy_with(db, pipeline.arn)
        if busy is not None:
            raise PipelineBusy(
                f"pipeline {pipeline.arn} already has an execution in progress: {busy}",
                hint="wait for it to finish or cancel it with `kiln image cancel`",
            )
        claim = _record(db, pipeline, trigger=trigger, decision="STARTED", reason=reason, due_time=due_time,
                        client_token=client_token, os_marker=os_marker)
        body, version, claim_id, full_arn = dict(pipeline.body), pipeline.version, claim.id, pipeline.arn
        pipeline_account = pipeline.account
        try:
            recipe = recipe_of(db, body)
            recipe_arn, name, recipe_version = recipe.arn, recipe.name, recipe.version
        except KilnError as error:
            failure = error
    if failure is not None:
        _fail_claim(claim_id, str(failure))
        raise failure
    tests = body.get("imageTestsConfiguration") or {}
    try:
        scanning = build_step.scanning_config(body.get("imageScanningConfiguration"),
                                              tests_enabled=tests.get("imageTestsEnabled", True))
        image_arn = images.create_image(
            name=name,
            version=recipe_version,
            recipe_arn=recipe_arn,
            infrastructure_arn=body["infrastructureConfigurationArn"],
            distribution_arn=body.get("distributionConfigurationArn"),
            pipeline_arn=full_arn,
            tests_enabled=tests.get("imageTestsEnabled", True),
            tests_timeout_minutes=tests.get("timeoutMinutes", 720),
            enhanced_metadata=body.get("enhancedImageMetadataEnabled", True),
            tags={**(body.get("imageTags") or {}), **(tags or {})},
            region=full_arn.split(":")[3],  # a pipeline builds in its own region, as its own account
            account=pipeline_account,
            workflows=body.get("workflows"),
            execution_role=body.get("executionRole"),
        )
    except BaseException as error:
        _fail_claim(claim_id, str(error) or type(error).__name__)
        raise
    build_step.request_scan(image_arn, scanning, account=pipeline_account, region=full_arn.split(":")[3],
                            pipeline_arn=full_arn)
    _settle_claim(claim_id, image_arn)
    return Execution(claim_id, full_arn, trigger, "STARTED", reason, image_arn, version)


def _settle_claim(claim_id: str, image_arn: str) -> None:
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.pipelines import ImagePipelineRow, PipelineExecutionRow

    with session() as db:
        claim = db.get(PipelineExecutionRow, claim_id)
        assert claim is not None
        claim.image_arn = image_arn
        pipeline = db.scalars(select(ImagePipelineRow).where(ImagePipelineRow.arn == claim.pipeline_arn)).first()
        if pipeline is not None:
            pipeline.date_last_run = claim.time
            pipeline.last_image_arn = image_arn


def _fail_claim(claim_id: str, reason: str) -> None:
    """The start failed after the claim: FAILED_TO_START, counted against a scheduled run."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.pipelines import ImagePipelineRow, PipelineExecutionRow

    with session() as db:
        claim = db.get(PipelineExecutionRow, claim_id)
        assert claim is not None
        claim.decision, claim.reason = "FAILED_TO_START", reason
        pipeline = db.scalars(select(ImagePipelineRow).where(ImagePipelineRow.arn == claim.pipeline_arn)).first()
        if pipeline is not None and claim.trigger == "SCHEDULE":
            pipeline.consecutive_failures += 1
            _disable_if_due(db, pipeline)


def execute(execution: Execution, *, runner: Runner | None = None, progress: Progress = _quiet) -> str:
    """Run the build of a started execution; returns the image's final status (failures don't raise)."""
    from kiln.services.builds import records as images
    assert execution.image_arn is not None
    try:
        (runner or build_runner)(
            execution.image_arn, pipeline_version=str(execution.pipeline_version), progress=progress
        )
    except Exception as error:  # the build records its own failure; make sure the image is final
        row = images.get_row(execution.image_arn)
        if row.status in images.ACTIVE:
            images.fail_running_steps(execution.image_arn, str(error))
            images.set_status(execution.image_arn, "FAILED", str(error) or type(error).__name__)
        progress(f"{execution.image_arn}: build failed: {error}")
    sync_outcomes(execution.pipeline_arn)
    return images.get_row(execution.image_arn).status


def start_image_pipeline_execution(
    body: dict[str, Any] | StartImagePipelineExecutionRequest,
    *,
    runner: Runner | None = None,
    progress: Progress = _quiet,
    wait: bool = True,
    caller: str | None = None,
) -> dict[str, Any]:
    """StartImagePipelineExecution: a manual start always builds (no dependency condition).

    With ``wait`` the build runs here before returning; the answer carries ``imageBuildVersionArn``.
    A disabled pipeline can still be started by hand (``status`` governs the schedule).
    """
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.pipelines import PipelineExecutionRow
    from kiln.services.pipelines.resource import find_pipeline

    request = parse_shape(StartImagePipelineExecutionRequest, body)
    token = request.clientToken or new_client_token()
    with session() as db:
        pipeline_arn = find_pipeline(db, request.imagePipelineArn, caller=caller).arn
        if request.clientToken:
            previous = db.scalars(
                select(PipelineExecutionRow).where(PipelineExecutionRow.client_token == request.clientToken)
            ).first()
            if previous is not None:
                if previous.pipeline_arn != pipeline_arn or previous.image_arn is None:
                    raise IdempotentParameterMismatch(
                        f"clientToken {token!r} was already used for another request",
                        hint="use a new clientToken for a different request",
                    )
                return {"requestId": new_request_id(), "clientToken": token,
                        "imageBuildVersionArn": previous.image_arn}
        recipe_parent = _parent_of(db, pipeline_arn)
    marker = _marker_or_none(recipe_parent)
    execution = launch(pipeline_arn, trigger="MANUAL", reason="started by StartImagePipelineExecution",
                       tags=request.tags, client_token=token, os_marker=marker)
    progress(f"{execution.image_arn}: started by pipeline {pipeline_arn} (version {execution.pipeline_version})")
    if wait:
        execute(execution, runner=runner, progress=progress)
    return {"requestId": new_request_id(), "clientToken": token, "imageBuildVersionArn": execution.image_arn}


def _parent_of(db: Any, pipeline_arn: str) -> str | None:
    from kiln.services.pipelines.resource import find_pipeline, recipe_of

    try:
        return str(recipe_of(db, find_pipeline(db, pipeline_arn).body).parent_image)
    except KilnError:
        return None


def _marker_or_none(parent: str | None) -> dict[str, str] | None:
    """The OS mirror's marker recorded with a start; a start does not fail for an unreachable mirror."""
    from kiln.services.pipelines.dependencies import current_os_marker

    if parent is None:
        return None
    try:
        return current_os_marker(parent)
    except KilnError:
        return None


# --- scheduled runs ------------------------------------------------------------------------------


def run_scheduled(
    pipeline_arn: str,
    due_time: datetime,
    *,
    runner: Runner | None = None,
    progress: Progress = _quiet,
    wait: bool = True,
) -> Execution:
    """What the scheduler calls when a pipeline's schedule fires at ``due_time``: decide, record,
    and (with ``wait``) build."""
    from kiln.db.engine import session
    from kiln.services.pipelines.dependencies import check_dependency_updates
    from kiln.services.pipelines.resource import find_pipeline

    sync_outcomes(pipeline_arn)
    with session() as db:
        pipeline = find_pipeline(db, pipeline_arn)
        pipeline.last_due_run = due_time
        schedule = pipeline.body.get("schedule") or {}
        condition = schedule.get("pipelineExecutionStartCondition") or DEFAULT_START_CONDITION
        skip = None
        if pipeline.status != "ENABLED":
            skip = f"the pipeline is {pipeline.status}"
        elif (busy := _busy_with(db, pipeline.arn)) is not None:
            skip = f"pipeline already has an execution in progress: {busy}"
        if skip is not None:
            return _as_execution(_record(db, pipeline, trigger="SCHEDULE", decision="SKIPPED", reason=skip,
                                         due_time=due_time))
        recipe_parent = _parent_of(db, pipeline.arn)
    if condition == "EXPRESSION_MATCH_ONLY":
        reason, marker = "the schedule matched (EXPRESSION_MATCH_ONLY)", _marker_or_none(recipe_parent)
    else:
        try:
            check = check_dependency_updates(pipeline_arn)
        except KilnError as error:
            return _failed_to_start(pipeline_arn, due_time, f"cannot check dependency updates: {error}")
        if not check.updates:
            with session() as db:
                pipeline = find_pipeline(db, pipeline_arn)
                return _as_execution(_record(db, pipeline, trigger="SCHEDULE", decision="SKIPPED",
                                             reason=check.reason, due_time=due_time))
        reason, marker = check.reason, check.os_marker
    try:
        execution = launch(pipeline_arn, trigger="SCHEDULE", reason=reason, due_time=due_time, os_marker=marker)
    except PipelineBusy as error:
        with session() as db:
            pipeline = find_pipeline(db, pipeline_arn)
            return _as_execution(_record(db, pipeline, trigger="SCHEDULE", decision="SKIPPED",
                                         reason=error.message, due_time=due_time))
    except KilnError:
        return _latest(pipeline_arn)
    progress(f"{execution.image_arn}: scheduled run of {pipeline_arn} ({reason})")
    if wait:
        execute(execution, runner=runner, progress=progress)
    return execution


def _failed_to_start(pipeline_arn: str, due_time: datetime, reason: str) -> Execution:
    from kiln.db.engine import session
    from kiln.services.pipelines.resource import find_pipeline

    with session() as db:
        pipeline = find_pipeline(db, pipeline_arn)
        row = _record(db, pipeline, trigger="SCHEDULE", decision="FAILED_TO_START", reason=reason,
                      due_time=due_time)
        pipeline.consecutive_failures += 1
        _disable_if_due(db, pipeline)
        return _as_execution(row)


def _latest(pipeline_arn: str) -> Execution:
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.pipelines import PipelineExecutionRow

    with session() as db:
        row = db.scalars(
            select(PipelineExecutionRow)
            .where(PipelineExecutionRow.pipeline_arn == pipeline_arn)
            .order_by(PipelineExecutionRow.time.desc())
        ).first()
        return _as_execution(row)


# --- listing -------------------------------------------------------------------------------------


def list_pipeline_executions(
    pipeline_arn: str, *, caller: str | None = None, region: str | None = None
) -> list[dict[str, Any]]:
    """Every recorded decision for the pipeline (``caller``'s and in ``region`` when given), oldest first."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.pipelines import PipelineExecutionRow
    from kiln.model.shapes import format_date
    from kiln.services.pipelines.resource import find_pipeline

    with session() as db:
        pipeline_arn = find_pipeline(db, pipeline_arn, caller=caller, region=region).arn
    sync_outcomes(pipeline_arn)
    with session() as db:
        arn = find_pipeline(db, pipeline_arn).arn
        rows = db.scalars(
            select(PipelineExecutionRow)
            .where(PipelineExecutionRow.pipeline_arn == arn)
            .order_by(PipelineExecutionRow.time, PipelineExecutionRow.id)
        )
        return [
            {
                "executionId": row.id,
                "pipelineArn": row.pipeline_arn,
                "trigger": row.trigger,
                **({"dueTime": format_date(row.due_time)} if row.due_time else {}),
                "decision": row.decision,
                **({"reason": row.reason} if row.reason else {}),
                **({"imageArn": row.image_arn} if row.image_arn else {}),
                **({"outcome": row.outcome} if row.outcome else {}),
                "pipelineVersion": row.pipeline_version,
                "time": format_date(row.time),
            }
            for row in rows
        ]
