"""Image Builder images: records of builds, their states, workflow steps, packages.

A build is started with :func:`create_image` (allocates the next build number of the recipe version)
and executed by :mod:`kiln.services.builds.workflow`. Every state change is one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
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
from kiln.services.common.owners import in_region
from kiln.store.scans import scan_states

ACTIVE = ACTIVE_BUILD_STATES
FINAL = FINAL_BUILD_STATES

# outputResources.amis entries of AMIs published to another cloud carry it (its value: the target)
PUBLISHED_TARGET = "kiln:Target"


def image_arn(
    name: str, version: str, build: int, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT
) -> str:
    return f"arn:aws:imagebuilder:{region}:{account}:image/{name}/{version}/{build}"


def account_of(arn: str) -> str:
    """The account of an Image Builder ARN: who built the image (and owns its output AMIs)."""
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else DEFAULT_ACCOUNT


def _of_account(account: str) -> Any:
    """Image rows whose ARN names ``account`` (the ARN is the record's only account)."""
    return ImageBuild.arn.like(f"arn:aws:imagebuilder:%:{account}:image/%")


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
    account: str = DEFAULT_ACCOUNT,
    workflows: list[dict[str, Any]] | None = None,
    execution_role: str | None = None,
) -> str:
    """Record a new PENDING image of ``account`` with the next build number of the version, built in
    ``region`` (its ARN's region); the caller process owns it."""
    from kiln.runtime import procs

    owner = procs.current()
    now = utcnow()
    with session() as db:
        last = db.scalar(
            # Numbered per account (across its regions): another account's builds are never counted.
            select(func.max(ImageBuild.build_number)).where(
                ImageBuild.account == account, ImageBuild.name == name, ImageBuild.version == version
            )
        )
        build = (last or 0) + 1
        arn = image_arn(name, version, build, region, account)
        db.add(
            ImageBuild(
                arn=arn,
                account=account,
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
                workflows=list(workflows) if workflows else None,
                execution_role=execution_role,
            )
        )
    return arn


def _row(db: Any, arn: str, caller: str | None = None, region: str | None = None) -> ImageBuild:
    """The image ``arn`` names; with ``caller``, only one of the caller's account (another account's
    image is not found, as Image Builder answers: its owner is never told); with ``region``, only one
    made there (the ARN's region must agree, as a regional endpoint answers)."""
    row = db.get(ImageBuild, arn)
    if row is None or (caller is not None and account_of(row.arn) != caller) or not in_region(row.arn, region):
        where = f" in region {region}" if region else ""
        raise NotFound(f"image {arn} not found{where}", hint="list images with `kiln image builds`")
    return row


def check_caller(arn: str, caller: str | None) -> None:
    """Refuse (not found) an image that is not ``caller``'s."""
    if caller is not None:
        with session() as db:
            _row(db, arn, caller)


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
    """Whether cancelling was asked (the workflow asks before every step: one column, not the row)."""
    with session() as db:
        found = db.execute(select(ImageBuild.cancel_requested).where(ImageBuild.arn == arn)).first()
        if found is None:
            _row(db, arn)  # not found, in its words
        return bool(found[0]) if found is not None else False


def request_cancel(arn: str, *, caller: str | None = None, region: str | None = None) -> str:
    """CancelImageCreation: only an image still being built can be cancelled."""
    with session() as db:
        row = _row(db, arn, caller, region)
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
    if ":container-recipe/" in row.recipe_arn:  # a container build (kiln.services.builds.container)
        image["type"] = "DOCKER"
        image["containerRecipe"] = image.pop("imageRecipe")
        image["outputResources"]["containers"] = list(row.output_containers or [])
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


def get_image(arn: str, *, caller: str | None = None, region: str | None = None) -> dict[str, Any]:
    with session() as db:
        return _with_scan_states(db, [to_image_shape(_row(db, arn, caller, region))])[0]


def _with_scan_states(db: Any, images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The images with the ``scanState`` of their latest scan (none for an image never scanned)."""
    states = scan_states(db, [image["arn"] for image in images])
    for image in images:
        if image["arn"] in states:
            status, reason = states[image["arn"]]
            image["scanState"] = {"status": status, **({"reason": reason} if reason else {})}
    return images


def list_images(
    *, name: str | None = None, status: str | None = None, pipeline_arn: str | None = None,
    account: str | None = None, region: str | None = None,
) -> list[dict[str, Any]]:
    """The images (builds), of ``account`` and made in ``region`` only when given."""
    query = select(ImageBuild).order_by(ImageBuild.date_created, ImageBuild.arn)
    if account:
        query = query.where(_of_account(account))
    if name:
        query = query.where(ImageBuild.name == name)
    if status:
        query = query.where(ImageBuild.status == status.upper())
    if pipeline_arn:
        query = query.where(ImageBuild.pipeline_arn == pipeline_arn)
    with session() as db:
        return _with_scan_states(db, [to_image_shape(row) for row in db.scalars(query) if in_region(row.arn, region)])


def package_records(arn: str, *, caller: str | None = None, region: str | None = None) -> list[dict[str, str]]:
    """The image's inventory as the build recorded it: ``InstalledPackage.as_json()`` records (images
    built before inventories were read from the layers hold ``packageName``/``packageVersion`` only)."""
    with session() as db:
        row = _row(db, arn, caller, region)
        if row.packages is None:
            raise InvalidInput(f"image {arn} has no package list (status {row.status})")
        return list(row.packages)


def packages(arn: str, *, caller: str | None = None, region: str | None = None) -> list[dict[str, str]]:
    """ListImagePackages' ``imagePackageList``: packageName and packageVersion."""
    return [
        {"packageName": record["name"], "packageVersion": record["version"]} if "name" in record else record
        for record in package_records(arn, caller=caller, region=region)
    ]


# --- workflow steps -------------------------------------------------------------------------


def list_steps(arn: str, *, caller: str | None = None, region: str | None = None) -> list[dict[str, Any]]:
    with session() as db:
        _row(db, arn, caller, region)
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
def step(arn: str, workflow: str, name: str, action: str, *, check: Callable[[], None] | None = None,
         **columns: Any) -> Iterator[StepHandle]:
    """Record a workflow step: RUNNING, then COMPLETED or FAILED (with the error as message);
    ``columns``: more of the step's row (its workflow execution, inputs, onFailure, timeout). ``check``
    runs first in the transaction that records the start (the workflow's cancel check: one transaction,
    not two); what it raises records nothing."""
    step_id = f"step-{uuid.uuid4()}"
    with session(durable=False) as db:  # a crash leaves the build to recovery, which fails it anyway
        if check is not None:
            check()
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
                **columns,
            )
        )
    handle = StepHandle(step_id)
    try:
        yield handle
    except BaseException as error:
        # an error may say what it makes of the step (a cancellation: CANCELLED); else FAILED
        _finish_step(step_id, getattr(error, "step_status", "FAILED"), str(error) or type(error).__name__, handle)
        raise
    _finish_step(step_id, handle.status, handle.message, handle)


def skip_step(arn: str, workflow: str, name: str, action: str, message: str, **columns: Any) -> None:
    with step(arn, workflow, name, action, **columns) as handle:
        handle.status, handle.message = "SKIPPED", message


def _finish_step(step_id: str, status: str, message: str | None, handle: StepHandle) -> None:
    with session(durable=False) as db:
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
            select(WorkflowStep).where(WorkflowStep.image_arn == arn, WorkflowStep.status.in_(("RUNNING", "WAITING")))
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


def is_local(ami: dict[str, Any]) -> bool:
    """An ``outputResources.amis`` entry of kiln's store (not an AMI published to AWS)."""
    return PUBLISHED_TARGET not in ami


def own_ami(image: dict[str, Any], region: str) -> dict[str, Any] | None:
    """The image's output AMI of the building account in ``region``, if it has one."""
    owner = account_of(image["arn"])
    for ami in image["outputResources"]["amis"]:
        if is_local(ami) and ami["region"] == region and ami.get("accountId", DEFAULT_ACCOUNT) == owner:
            return ami
    return None


def find_cached(cache_key: str, *, exclude: str, region: str = DEFAULT_REGION) -> dict[str, Any] | None:
    """The newest AVAILABLE image of the same account built from the same inputs whose AMI in
    ``region`` is still registered."""
    from kiln.store import api as store

    with session() as db:
        rows = list(
            db.scalars(
                select(ImageBuild)
                .where(ImageBuild.cache_key == cache_key, ImageBuild.status == "AVAILABLE", ImageBuild.arn != exclude,
                       _of_account(account_of(exclude)))
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
