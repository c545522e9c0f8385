"""``kiln image approve|reject IMAGE_ARN``: the answer to an image waiting at a ``WaitForAction`` step (the
managed ``test-and-approve-image`` a pipeline's approval switch chooses, or a custom workflow's; see the
README's "Approval"), sent as Image Builder's ``SendWorkflowStepAction`` — RESUME to approve, STOP to
reject (the step fails; its ``onFailure`` decides). An image that is not waiting is one clear error, and
nothing is changed.

The decision is a property of the image build (table ``image_approvals``), not of one AMI: approving
marks every AMI the build has made so far with the watermark ``approved`` (key ``<image account>:approved``,
first attached to the build's own AMI, copied to the others as if inherited from it), and every AMI the
build makes afterwards gets it too — its CreateImage output (:func:`mark_new_ami`) and the distribution's
copies to other regions and accounts, which inherit it from that AMI. A RESUME or STOP sent to the managed
approval step by other means (``kiln workflow send-action``, SendWorkflowStepAction over the API) is the
same decision (:func:`answered`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.approvals import ImageApproval
from kiln.db.tables.images import WorkflowStep
from kiln.db.tables.workflows import WorkflowExecution
from kiln.errors import InvalidRequest
from kiln.home import DEFAULT_ACCOUNT
from kiln.model.sharing import Principal
from kiln.services.builds import made, records
from kiln.services.workflows import executions
from kiln.services.workflows.managed_approval import APPROVAL_STEP, is_approval_workflow
from kiln.store import watermarks

APPROVED = "approved"
WAITING = "WAITING"
DECISIONS = {"RESUME": "APPROVED", "STOP": "REJECTED"}


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


def decision_of(image_arn: str) -> dict[str, Any] | None:
    """The build's decision: ``{decision, reason, decidedBy, decidedAt, stepExecutionId, watermarkKey}``."""
    with session() as db:
        row = db.get(ImageApproval, image_arn)
        if row is None:
            return None
        return {"decision": row.decision, "reason": row.reason, "decidedBy": row.decided_by,
                "decidedAt": row.decided_at, "stepExecutionId": row.step_execution_id,
                "watermarkKey": row.watermark_key}


def is_approved(image_arn: str) -> bool:
    decision = decision_of(image_arn)
    return decision is not None and decision["decision"] == "APPROVED"


def _amis(image_arn: str) -> tuple[str | None, list[str]]:
    """The build's own AMI (in its region, of its account) and every other AMI it made so far."""
    own = records.get_row(image_arn).intermediate_ami_id
    others = [m.resource for m in made.made_by(image_arn)
              if m.kind == made.AMI and m.status == "MADE" and m.resource and m.resource != own]
    return own, others


def mark_amis(image_arn: str) -> str | None:
    """``approved`` on every AMI of the build made so far; the key, or None while it has made none."""
    own, others = _amis(image_arn)
    if own is None:
        return None
    region, account = image_arn.split(":")[3], records.account_of(image_arn)
    with session():
        key = watermarks.attach(own, APPROVED, region, Principal(account))
        watermarks.spread(own, key, others)
    return key


def mark_new_ami(image_arn: str) -> None:
    """The build made its AMI (CreateImage, or a cached image's copy): an approved build marks it."""
    if is_approved(image_arn):
        key = mark_amis(image_arn)
        with session() as db:
            row = db.get(ImageApproval, image_arn)
            if row is not None and key:
                row.watermark_key = key


def _record(image_arn: str, decision: str, reason: str | None, by: str, step: str) -> ImageApproval:
    with session() as db:
        row = db.get(ImageApproval, image_arn)
        if row is None:
            row = ImageApproval(image_arn=image_arn)
            db.add(row)
        row.decision, row.reason, row.decided_by = decision, reason, by
        row.decided_at, row.step_execution_id = utcnow(), step
        return row


def approve(image_arn: str, reason: str | None = None, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """Decide, mark what the build made so far, and RESUME the step — one transaction, so the build never
    goes on to copy an AMI that is not marked yet, and a refused RESUME leaves nothing marked."""
    account = account or DEFAULT_ACCOUNT
    with session():
        step = _waiting_step(image_arn, account)
        row = _record(image_arn, "APPROVED", reason, account, step)
        row.watermark_key = key = mark_amis(image_arn)
        answer = executions.send_workflow_step_action(step, image_arn, "RESUME", reason, caller=account)
    ami = records.get_row(image_arn).intermediate_ami_id
    return {**answer, "action": "RESUME", "reason": reason, "imageId": ami, "watermarkKey": key}


def reject(image_arn: str, reason: str | None = None, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    account = account or DEFAULT_ACCOUNT
    with session():
        step = _waiting_step(image_arn, account)
        _record(image_arn, "REJECTED", reason, account, step)
        answer = executions.send_workflow_step_action(step, image_arn, "STOP", reason, caller=account)
    return {**answer, "action": "STOP", "reason": reason}


def answered(image_arn: str, step_id: str, action: str, reason: str | None) -> None:
    """The build saw an action on a waiting step: on the managed approval step, one that came by other means
    than approve/reject is the build's decision too (sent by the image's account, the only one that may)."""
    with session() as db:
        step = db.get(WorkflowStep, step_id)
        execution = db.get(WorkflowExecution, step.workflow_execution_id) if step is not None else None
        if execution is None or step.name != APPROVAL_STEP or not is_approval_workflow(execution.workflow_arn):
            return
        existing = db.get(ImageApproval, image_arn)
        if existing is not None and existing.step_execution_id == step_id:
            return
        row = _record(image_arn, DECISIONS[action], reason, records.account_of(image_arn), step_id)
        if action == "RESUME":
            row.watermark_key = mark_amis(image_arn)
