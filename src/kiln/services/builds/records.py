"""Image Builder images: records of builds, their states, workflow steps, packages.

A build is started with :func:`create_image` (allocates the next build number of the recipe version)
and executed by :mod:`kiln.services.builds.workflow`. Every state change is one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.images import ImageBuild, WorkflowStep
from kiln.errors import Conflict, InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.states import ACTIVE_BUILD_STATES, FINAL_BUILD_STATES

ACTIVE = ACTIVE_BUILD_STATES
FINAL = FINAL_BUILD_STATES


def image_arn(name: str, version: str, build: int, region: str = DEFAULT_REGION) -> str:
    return f"arn:aws:imagebuilder:{region}:{DEFAULT_ACCOUNT}:image/{name}/{version}/{build}"


def create_image(
    *,
    name: str,
    version: str,
    recipe_arn: str,
    infrastructure_arn: str,
    distribution_arn: str | None = None,
    pipeline_arn: str | None = None,
    tests_enabled: bool = True,
    tests_timeout_minutes: int = 720,
    enhanced_metadata: bool = True,
    tags: dict[str, str] | None = None,
    region: str = DEFAULT_REGION,
) -> str:
    """Record a new PENDING image with the next build number, built in ``region`` (its ARN's region);
    the caller process owns it."""
    from kiln.runtime import procs

    owner = procs.current()
    now = utcnow()
    with session() as db:
        last = db.scalar(
            select(func.max(ImageBuild.build_number)).where(ImageBuild.name == name, ImageBuild.version == version)
        )
        build = (last or 0) + 1
        arn = image_arn(name, version, build, region)
        db.add(
            ImageBuild(
                arn=arn,
                name=name,
                version=version,
                build_number=build,
                recipe_arn=recipe_arn,
                infrastructure_arn=infrastructure_arn,
                distribution_arn=distribution_arn,
                pipeline_arn=pipeline_arn,
                status="PENDING",
                date_created=now,
                date_updated=now,
                tests_enabled=tests_enabled,
                tests_timeout_minutes=tests_timeout_minutes,
                enhanced_metadata=enhanced_metadata,
                tags=dict(tags or {}),
                output_amis=[],
                resolved_inputs={},
                owner_pid=owner.pid,
                owner_start=owner.start_time,
                workflow_execution_id=f"wf-{uuid.uuid4()}",
            )
        )
    return arn


def _row(db: Any, arn: str) -> ImageBuild:
    row = db.get(ImageBuild, arn)
    if row is None:
        raise NotFound(f"image {arn} not found", hint="list images with `kiln image list`")
    return row


def update(arn: str, **fields: Any) -> None:
    with session() as db:
        row = _row(db, arn)
        for key, value in fields.items():
            setattr(row, key, value)
        row.date_updated = utcnow()


def set_status(arn: str, status: str, reason: str | None = None) -> None:
    with session() as db:
        row = _row(db, arn)
        row.status = status
        row.reason = reason
        row.date_updated = utcnow()
        _record_event(db, row)


def _record_event(db: Any, row: ImageBuild) -> None:
    """Append the state change to the event log (webhooks get it from there, never blocking the build)."""
    from kiln.services.common import events
    events.record_event("EC2 Image Builder Image State Change", row.arn, to_image_shape(row), db=db)


def get_row(arn: str) -> ImageBuild:
    with session() as db:
        row = _row(db, arn)
        db.expunge(row)
        return row


def cancel_requested(arn: str) -> bool:
    with session() as db:
        return bool(_row(db, arn).cancel_requested)


def request_cancel(arn: str) -> str:
    """CancelImageCreation: only an image still being built can be cancelled."""
    with session() as db:
        row = _row(db, arn)
        if row.status not in ACTIVE:
            raise Conflict(f"image {arn} is {row.status}; only an image being built can be cancelled")
        row.cancel_requested = True
        row.date_updated = utcnow()
    return arn


def to_image_shape(row: ImageBuild) -> dict[str, Any]:
    """The Image shape of GetImage, with Image Builder's field names."""
    image: dict[str, Any] = {
        "arn": row.arn,
        "type": "AMI",
        "name": row.name,
        "version": f"{row.version}/{row.build_number}",
        "platform": row.platform,
        "enhancedImageMetadataEnabled": row.enhanced_metadata,
        "state": {"status": row.status, **({"reason": row.reason} if row.reason else {})},
        "imageRecipe": {"arn": row.recipe_arn},
        "infrastructureConfiguration": {"arn": row.infrastructure_arn},
        "imageTestsConfiguration": {
            "imageTestsEnabled": row.tests_enabled,
            "timeoutMinutes": row.tests_timeout_minutes,
        },
        "dateCreated": row.date_created.isoformat(),
        "outputResources": {"amis": list(row.output_amis or [])},
        "tags": dict(row.tags or {}),
        "buildType": "USER_INITIATED" if not row.pipeline_arn else "SCHEDULED",
        "imageSource": "CUSTOM",
    }
    if row.os_version:
        image["osVersion"] = row.os_version
    if row.distribution_arn:
        image["distributionConfiguration"] = {"arn": row.distribution_arn}
    if row.pipeline_arn:
        image["sourcePipelineArn"] = row.pipeline_arn
        image["sourcePipelineName"] = row.pipeline_arn.rsplit("/", 1)[-1]
    if row.deprecation_time:
        image["deprecationTime"] = row.deprecation_time.isoformat()
    if row.lifecycle_execution_id:
        image["lifecycleExecutionId"] = row.lifecycle_execution_id
    if row.cached_from:
        image["kilnCachedFrom"] = row.cached_from
    return image


def get_image(arn: str) -> dict[str, Any]:
    with session() as db:
        return to_image_shape(_row(db, arn))


def list_images(
    *, name: str | None = None, status: str | None = None, pipeline_arn: str | None = None
) -> list[dict[str, Any]]:
    query = select(ImageBuild).order_by(ImageBuild.date_created, ImageBuild.arn)
    if name:
        query = query.where(ImageBuild.name == name)
    if status:
        query = query.where(ImageBuild.status == status.upper())
    if pipeline_arn:
        query = query.where(ImageBuild.pipeline_arn == pipeline_arn)
    with session() as db:
        return [to_image_shape(row) for row in db.scalars(query)]


def packages(arn: str) -> list[dict[str, str]]:
    with session() as db:
        row = _row(db, arn)
        if row.packages is None:
            raise InvalidInput(f"image {arn} has no package list (status {row.status})")
        return list(row.packages)


# --- workflow steps -------------------------------------------------------------------------


def list_steps(arn: str) -> list[dict[str, Any]]:
    with session() as db:
        _row(db, arn)
        steps = db.scalars(
            select(WorkflowStep).where(WorkflowStep.image_arn == arn).order_by(WorkflowStep.position)
        )
        return [
            {
                "stepExecutionId": step.step_execution_id,
                "workflow": step.workflow,
                "name": step.name,
                "action": step.action,
                "status": step.status,
                **({"message": step.message} if step.message else {}),
                "outputs": step.outputs or {},
                **({"startTime": step.start_time.isoformat()} if step.start_time else {}),
                **({"endTime": step.end_time.isoformat()} if step.end_time else {}),
                **({"logPath": step.log_path} if step.log_path else {}),
            }
            for step in steps
        ]


class StepHandle:
    def __init__(self, step_id: str) -> None:
        self.step_id = step_id
        self.outputs: dict[str, Any] = {}
        self.log_path: str | None = None
        self.status = "COMPLETED"
        self.message: str | None = None


@contextmanager
def step(arn: str, workflow: str, name: str, action: str) -> Iterator[StepHandle]:
    """Record a workflow step: RUNNING, then COMPLETED or FAILED (with the error as message)."""
    step_id = f"step-{uuid.uuid4()}"
    with session() as db:
        position = (db.scalar(select(func.count()).where(WorkflowStep.image_arn == arn)) or 0) + 1
        db.add(
            WorkflowStep(
                step_execution_id=step_id,
                image_arn=arn,
                workflow=workflow,
                position=position,
                name=name,
                action=action,
                status="RUNNING",
                outputs={},
                start_time=utcnow(),
            )
        )
    handle = StepHandle(step_id)
    try:
        yield handle
    except BaseException as error:
        _finish_step(step_id, "FAILED", str(error) or type(error).__name__, handle)
        raise
    _finish_step(step_id, handle.status, handle.message, handle)


def skip_step(arn: str, workflow: str, name: str, action: str, message: str) -> None:
    with step(arn, workflow, name, action) as handle:
        handle.status, handle.message = "SKIPPED", message


def _finish_step(step_id: str, status: str, message: str | None, handle: StepHandle) -> None:
    with session() as db:
        row = db.get(WorkflowStep, step_id)
        if row is None:
            return
        row.status = status
        row.message = message
        row.outputs = handle.outputs
        row.log_path = handle.log_path
        row.end_time = utcnow()


def fail_running_steps(arn: str, message: str, when: datetime | None = None) -> None:
    with session() as db:
        for row in db.scalars(
            select(WorkflowStep).where(WorkflowStep.image_arn == arn, WorkflowStep.status == "RUNNING")
        ):
            row.status = "FAILED"
            row.message = message
            row.end_time = when or utcnow()


def finish_available(arn: str, output_amis: list[dict[str, Any]]) -> None:
    """The one transaction that makes an image AVAILABLE, after its AMI's blobs are durable."""
    with session() as db:
        row = _row(db, arn)
        row.output_amis = output_amis
        row.status = "AVAILABLE"
        row.reason = None
        row.intermediate_ami_id = None
        row.build_instance_id = None
        row.test_instance_id = None
        row.date_updated = utcnow()
        _record_event(db, row)


def own_ami(image: dict[str, Any], region: str) -> dict[str, Any] | None:
    """The image's output AMI of the building account in ``region``, if it has one."""
    for ami in image["outputResources"]["amis"]:
        if ami["region"] == region and ami.get("accountId", DEFAULT_ACCOUNT) == DEFAULT_ACCOUNT:
            return ami
    return None


def find_cached(cache_key: str, *, exclude: str, region: str = DEFAULT_REGION) -> dict[str, Any] | None:
    """The newest AVAILABLE image built from the same inputs whose AMI in ``region`` is still registered."""
    from kiln.store import api as store

    with session() as db:
        rows = list(
            db.scalars(
                select(ImageBuild)
                .where(ImageBuild.cache_key == cache_key, ImageBuild.status == "AVAILABLE", ImageBuild.arn != exclude)
                .order_by(ImageBuild.date_created.desc())
            )
        )
        shapes = [to_image_shape(row) for row in rows]
    for shape in shapes:
        ami = own_ami(shape, region)
        if ami is None:
            continue
        try:
            info = store.get_image(ami["image"], region=region)
        except NotFound:
            continue
        if info.state == "available":
            return shape
    return None
