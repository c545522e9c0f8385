"""``kiln image approve|reject IMAGE_ARN``: the answer to an image waiting at a ``WaitForAction`` step (a
workflow of the image's pipeline or CreateImage; see the README's "Approval"), sent as Image Builder's
``SendWorkflowStepAction`` — RESUME to approve, STOP to reject (the step fails; its ``onFailure``
decides). Approving first marks the image's AMI with the watermark ``approved`` (key
``<image account>:approved``), which every AMI distributed or copied from it inherits and allowed-images
criteria (``ImageWatermarks``) can require. An image that is not waiting is one clear error, and nothing
is changed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kiln.db.engine import session
from kiln.db.tables.images import WorkflowStep
from kiln.errors import InvalidRequest
from kiln.home import DEFAULT_ACCOUNT
from kiln.model.sharing import Principal
from kiln.services.builds import records
from kiln.services.workflows import executions
from kiln.store import watermarks

APPROVED = "approved"
WAITING = "WAITING"


def _waiting_step(image_arn: str, account: str) -> str:
    records.check_caller(image_arn, account)
    with session() as db:
        step = db.scalar(select(WorkflowStep.step_execution_id).where(
            WorkflowStep.image_arn == image_arn, WorkflowStep.status == WAITING,
            WorkflowStep.action_requested.is_(None)).order_by(WorkflowStep.start_time).limit(1))
    if step is None:
        status = records.get_row(image_arn).status
        raise InvalidRequest(f"image {image_arn} is not waiting for an approval (its status is {status})",
                             location=image_arn, hint="kiln workflow waiting lists the images that wait")
    return step


def approve(image_arn: str, reason: str | None = None, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    account = account or DEFAULT_ACCOUNT
    step = _waiting_step(image_arn, account)
    row = records.get_row(image_arn)
    key = None
    if row.intermediate_ami_id:
        key = watermarks.attach(row.intermediate_ami_id, APPROVED, image_arn.split(":")[3], Principal(account))
    answer = executions.send_workflow_step_action(step, image_arn, "RESUME", reason, caller=account)
    return {**answer, "action": "RESUME", "reason": reason, "imageId": row.intermediate_ami_id, "watermarkKey": key}


def reject(image_arn: str, reason: str | None = None, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    account = account or DEFAULT_ACCOUNT
    step = _waiting_step(image_arn, account)
    answer = executions.send_workflow_step_action(step, image_arn, "STOP", reason, caller=account)
    return {**answer, "action": "STOP", "reason": reason}
