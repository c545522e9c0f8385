"""What ran: workflow executions of an image and their step executions, as Image Builder reports
them (ListWorkflowExecutions, GetWorkflowExecution, ListWorkflowStepExecutions,
GetWorkflowStepExecution), and the WaitForAction protocol (ListWaitingWorkflowSteps,
SendWorkflowStepAction).

The build engine writes the records (:func:`start_execution`, :func:`finish_execution`, the image's
step rows); an action for a waiting step is written here by any process (the CLI, the API) in one
short transaction, and the build — polling with reads only — picks it up.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.images import ImageBuild, WorkflowStep
from kiln.db.tables.workflows import WorkflowExecution
from kiln.errors import Conflict, InvalidInput, NotFound
from kiln.model.shapes import new_client_token, new_request_id

WAITING = "WAITING"
ACTIONS = ("RESUME", "STOP")


def _account(image_arn: str) -> str:
    parts = image_arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def _image(db: Any, arn: str, caller: str | None) -> ImageBuild:
    row = db.get(ImageBuild, arn)
    if row is None or (caller is not None and _account(arn) != caller):
        raise NotFound(f"image {arn} not found", location="imageBuildVersionArn")
    return row


def _execution(db: Any, execution_id: str, caller: str | None) -> WorkflowExecution:
    row = db.get(WorkflowExecution, execution_id)
    if row is None or (caller is not None and _account(row.image_arn) != caller):
        raise NotFound(f"workflow execution {execution_id} not found", location="workflowExecutionId")
    return row


def _step(db: Any, step_id: str, caller: str | None) -> WorkflowStep:
    row = db.get(WorkflowStep, step_id)
    if row is None or row.workflow_execution_id is None or (caller is not None and _account(row.image_arn) != caller):
        raise NotFound(f"workflow step execution {step_id} not found", location="stepExecutionId")
    return row


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# --- written by the build engine ----------------------------------------------------------------


def start_execution(image_arn: str, workflow_arn: str, workflow_type: str, *, parallel_group: str | None = None,
                    status: str = "RUNNING", message: str | None = None) -> str:
    execution_id = f"wf-{uuid.uuid4()}"
    now = utcnow()
    with session() as db:
        position = (db.scalar(select(func.count()).where(WorkflowExecution.image_arn == image_arn)) or 0) + 1
        db.add(WorkflowExecution(
            workflow_execution_id=execution_id, image_arn=image_arn, workflow_arn=workflow_arn, type=workflow_type,
            position=position, status=status, message=message, parallel_group=parallel_group, start_time=now,
            end_time=None if status == "RUNNING" else now,
        ))
    return execution_id


def finish_execution(execution_id: str, status: str, message: str | None = None) -> None:
    with session() as db:
        row = db.get(WorkflowExecution, execution_id)
        if row is not None:
            row.status, row.message, row.end_time = status, message, utcnow()


def fail_running_executions(image_arn: str, status: str, message: str) -> None:
    """An image that ends FAILED or CANCELLED: its running executions end with it."""
    with session() as db:
        for row in db.scalars(select(WorkflowExecution).where(WorkflowExecution.image_arn == image_arn,
                                                              WorkflowExecution.status == "RUNNING")):
            row.status, row.message, row.end_time = status, message[:500], utcnow()


def set_waiting(step_id: str) -> None:
    """The step WAITING, and Image Builder's "Workflow Step Waiting" event (webhooks get it)."""
    from kiln.services.common import events

    with session() as db:
        row = db.get(WorkflowStep, step_id)
        if row is None:
            return
        row.status = WAITING
        execution = db.get(WorkflowExecution, row.workflow_execution_id)
        detail = {"stepExecutionId": step_id, "imageBuildVersionArn": row.image_arn,
                  "workflowExecutionId": row.workflow_execution_id, "stepName": row.name,
                  "workflowBuildVersionArn": execution.workflow_arn if execution else None,
                  "inputs": row.inputs or {}}
        events.record_event("EC2 Image Builder Workflow Step Waiting", row.image_arn, detail, db=db)


def action_for(step_id: str) -> tuple[str | None, str | None]:
    """The action sent to a waiting step (None until one comes) and its reason; a read only."""
    with session() as db:
        row = db.get(WorkflowStep, step_id)
        return (row.action_requested, row.action_reason) if row is not None else ("STOP", "step record is gone")


# --- Image Builder's answers -----------------------------------------------------------------------


def _counts(db: Any, execution_id: str) -> dict[str, int]:
    statuses = list(db.scalars(select(WorkflowStep.status).where(WorkflowStep.workflow_execution_id == execution_id)))
    succeeded = statuses.count("COMPLETED")
    failed = statuses.count("FAILED")
    skipped = statuses.count("SKIPPED")
    return {"totalStepCount": len(statuses), "totalStepsSucceeded": succeeded, "totalStepsFailed": failed,
            "totalStepsSkipped": skipped}


def _execution_shape(db: Any, row: WorkflowExecution) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "workflowBuildVersionArn": row.workflow_arn, "workflowExecutionId": row.workflow_execution_id,
        "type": row.type, "status": row.status, **_counts(db, row.workflow_execution_id),
    }
    for key, value in (("message", row.message), ("startTime", _iso(row.start_time)),
                       ("endTime", _iso(row.end_time)), ("parallelGroup", row.parallel_group)):
        if value:
            shape[key] = value
    return shape


def list_workflow_executions(image_arn: str, *, caller: str | None = None) -> dict[str, Any]:
    with session() as db:
        image = _image(db, image_arn, caller)
        rows = db.scalars(select(WorkflowExecution).where(WorkflowExecution.image_arn == image_arn)
                          .order_by(WorkflowExecution.position))
        answer = {"requestId": new_request_id(), "imageBuildVersionArn": image_arn,
                  "workflowExecutions": [_execution_shape(db, row) for row in rows]}
        if image.reason:
            answer["message"] = image.reason[:500]
        return answer


def get_workflow_execution(execution_id: str, *, caller: str | None = None) -> dict[str, Any]:
    with session() as db:
        row = _execution(db, execution_id, caller)
        return {"requestId": new_request_id(), "imageBuildVersionArn": row.image_arn, **_execution_shape(db, row)}


def _step_shape(step: WorkflowStep, *, full: bool = False) -> dict[str, Any]:
    shape: dict[str, Any] = {"stepExecutionId": step.step_execution_id, "name": step.name, "action": step.action,
                             "status": step.status}
    optional = {
        "description": step.description,
        "message": step.message,
        "inputs": json.dumps(step.inputs) if step.inputs is not None else None,
        "outputs": json.dumps(step.outputs) if step.outputs else None,
        "startTime": _iso(step.start_time),
        "endTime": _iso(step.end_time),
    }
    if full:
        optional["onFailure"] = step.on_failure
        optional["timeoutSeconds"] = step.timeout_seconds  # type: ignore[assignment]
    shape.update({key: value for key, value in optional.items() if value is not None})
    return shape


def list_workflow_step_executions(execution_id: str, *, caller: str | None = None) -> dict[str, Any]:
    with session() as db:
        execution = _execution(db, execution_id, caller)
        steps = db.scalars(select(WorkflowStep).where(WorkflowStep.workflow_execution_id == execution_id)
                           .order_by(WorkflowStep.position))
        answer = {"requestId": new_request_id(), "workflowBuildVersionArn": execution.workflow_arn,
                  "workflowExecutionId": execution_id, "imageBuildVersionArn": execution.image_arn,
                  "steps": [_step_shape(step) for step in steps]}
        if execution.message:
            answer["message"] = execution.message[:500]
        return answer


def get_workflow_step_execution(step_id: str, *, caller: str | None = None) -> dict[str, Any]:
    with session() as db:
        step = _step(db, step_id, caller)
        execution = db.get(WorkflowExecution, step.workflow_execution_id)
        return {"requestId": new_request_id(), "workflowExecutionId": step.workflow_execution_id,
                "imageBuildVersionArn": step.image_arn,
                "workflowBuildVersionArn": execution.workflow_arn if execution else "",
                **_step_shape(step, full=True)}


def list_waiting_workflow_steps(*, caller: str | None = None, region: str | None = None) -> dict[str, Any]:
    """ListWaitingWorkflowSteps: the caller's steps WAITING for SendWorkflowStepAction."""
    with session() as db:
        rows = db.execute(
            select(WorkflowStep, WorkflowExecution.workflow_arn)
            .join(WorkflowExecution, WorkflowExecution.workflow_execution_id == WorkflowStep.workflow_execution_id)
            .where(WorkflowStep.status == WAITING, WorkflowStep.action_requested.is_(None))
            .order_by(WorkflowStep.start_time)
        ).all()
        steps = [
            {"stepExecutionId": step.step_execution_id, "imageBuildVersionArn": step.image_arn,
             "workflowExecutionId": step.workflow_execution_id, "workflowBuildVersionArn": workflow_arn,
             "name": step.name, "action": step.action, "startTime": _iso(step.start_time)}
            for step, workflow_arn in rows
            if (caller is None or _account(step.image_arn) == caller)
            and (region is None or step.image_arn.split(":")[3] == region)
        ]
        return {"steps": steps}


def send_workflow_step_action(
    step_id: str, image_arn: str, action: str, reason: str | None = None, client_token: str | None = None, *,
    caller: str | None = None,
) -> dict[str, Any]:
    """SendWorkflowStepAction: RESUME completes the waiting step, STOP fails it (its onFailure
    decides what follows). Only a step that is WAITING and not yet actioned takes one."""
    if action not in ACTIONS:
        raise InvalidInput(f"action must be RESUME or STOP, not {action!r}", location="action")
    if reason is not None and not 1 <= len(reason) <= 1024:
        raise InvalidInput("reason must be 1 to 1024 characters", location="reason")
    with session() as db:
        step = _step(db, step_id, caller)
        if step.image_arn != image_arn:
            raise NotFound(f"workflow step execution {step_id} is not a step of image {image_arn}",
                           location="stepExecutionId")
        if step.status != WAITING or step.action_requested is not None:
            raise Conflict(f"workflow step {step_id} ({step.name}) is {step.status}"
                           + (f", already sent {step.action_requested}" if step.action_requested else "")
                           + "; only a WAITING step takes an action")
        step.action_requested, step.action_reason = action, reason
    return {"stepExecutionId": step_id, "imageBuildVersionArn": image_arn,
            "clientToken": client_token or new_client_token()}
