"""``kiln workflow create|get|list|versions|delete|executions|steps|step|waiting|send-action``: Image
Builder workflows and what they ran."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, print_yaml, table
from kiln.cli.resource_verbs import ResourceVerbs, in_region

app = typer.Typer()


def _service() -> ModuleType:
    from kiln.services.workflows import resource

    return resource


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Workflow name.")],
    semantic_version: Annotated[str, typer.Option("--semantic-version", help="major.minor.patch")],
    workflow_type: Annotated[str, typer.Option("--type", help="BUILD, TEST or DISTRIBUTION.")],
    data_file: Annotated[Path | None, typer.Option("--data-file", help="Workflow YAML document file.")] = None,
    uri: Annotated[str | None, typer.Option("--uri", help="file://PATH or s3://BUCKET/KEY.")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    change_description: Annotated[str | None, typer.Option("--change-description")] = None,
    tags: Annotated[list[str] | None, typer.Option("--tags", help="KEY=VALUE, repeatable.")] = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """Create a workflow version from a document file or URI (CreateWorkflow); prints its build ARN."""
    from kiln.cli.resource_input import tags as resource_tags
    from kiln.errors import InvalidInput
    from kiln.services.workflows.resource import create_workflow

    if (data_file is None) == (uri is None):
        raise InvalidInput("give exactly one of --data-file or --uri", location="options")
    body: dict[str, object] = {"name": name, "semanticVersion": semantic_version, "type": workflow_type.upper()}
    if data_file is not None:
        try:
            body["data"] = data_file.read_text()
        except FileNotFoundError:
            raise InvalidInput(f"{data_file} does not exist", location="--data-file") from None
    else:
        body["uri"] = uri
    optional = {"description": description, "changeDescription": change_description, "tags": resource_tags(tags)}
    body.update({key: value for key, value in optional.items() if value is not None})
    result = create_workflow(body, base_dir=Path.cwd(), account=account, region=in_region(region))
    emit(output, result, result["workflowBuildVersionArn"])


@app.command("list")
def list_(
    owner: Annotated[str, typer.Option("--owner", help="Self or Amazon.")] = "Self",
    workflow_type: Annotated[str | None, typer.Option("--type", help="Only BUILD, TEST or DISTRIBUTION.")] = None,
    by_name: Annotated[bool, typer.Option("--by-name", help="Only the newest version per name.")] = False,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """List workflow versions (the account's, or with --owner Amazon the managed ones)."""
    from kiln.services.workflows.resource import list_workflows

    filters = [{"name": "type", "values": [workflow_type.upper()]}] if workflow_type else None
    result = list_workflows(owner=owner, by_name=by_name, filters=filters, account=account,
                            region=in_region(region))
    rows = result["workflowVersionList"]
    emit(output, result, lambda: table(["ARN", "TYPE", "OWNER", "CREATED"],
                                       [[r["arn"], r["type"], r["owner"], r["dateCreated"]] for r in rows]))


@app.command("versions")
def versions(
    arn: Annotated[str, typer.Argument(help="Workflow version ARN (…/workflow/build/NAME/1.0.0).")],
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """The builds of one workflow version (ListWorkflowBuildVersions)."""
    from kiln.services.workflows.resource import list_workflow_build_versions

    in_region(region)
    result = list_workflow_build_versions(arn, caller=account)
    rows = result["workflowSummaryList"]
    emit(output, result, lambda: table(["ARN", "TYPE", "OWNER", "CREATED"],
                                       [[r["arn"], r["type"], r["owner"], r["dateCreated"]] for r in rows]))


verbs = ResourceVerbs(app, _service, "workflowBuildVersionArn")
verbs.get("get_workflow", "workflow", "Show a workflow (the newest build matching a wildcard ARN).",
          arn_help="Build ARN, or version ARN with x wildcards.")
verbs.delete("delete_workflow", "Delete a workflow build (refused while a pipeline or a running image uses it).",
             arn_help="Workflow build version ARN.")


@app.command("executions")
def executions(
    image_arn: Annotated[str, typer.Argument(help="Image build version ARN.")],
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """The workflows an image ran (ListWorkflowExecutions)."""
    from kiln.services.builds.records import check_caller
    from kiln.services.workflows.executions import list_workflow_executions

    in_region(region)
    check_caller(image_arn, account)
    result = list_workflow_executions(image_arn, caller=account)
    rows = result["workflowExecutions"]
    emit(output, result, lambda: table(
        ["EXECUTION", "TYPE", "STATUS", "STEPS", "OK", "FAILED", "SKIPPED", "WORKFLOW"],
        [[r["workflowExecutionId"], r["type"], r["status"], r["totalStepCount"], r["totalStepsSucceeded"],
          r["totalStepsFailed"], r["totalStepsSkipped"], r["workflowBuildVersionArn"]] for r in rows]))


@app.command("steps")
def steps(
    execution_id: Annotated[str, typer.Argument(help="Workflow execution id (wf-…).")],
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """The steps of one workflow execution (ListWorkflowStepExecutions)."""
    from kiln.services.workflows.executions import list_workflow_step_executions

    in_region(region)
    result = list_workflow_step_executions(execution_id, caller=account)
    rows = result["steps"]
    emit(output, result, lambda: table(
        ["STEP EXECUTION", "NAME", "ACTION", "STATUS", "MESSAGE"],
        [[r["stepExecutionId"], r["name"], r["action"], r["status"], r.get("message", "")] for r in rows]))


@app.command("step")
def step(
    step_id: Annotated[str, typer.Argument(help="Step execution id (step-…).")],
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """One step execution with its inputs and outputs (GetWorkflowStepExecution)."""
    from kiln.services.workflows.executions import get_workflow_step_execution

    in_region(region)
    result = get_workflow_step_execution(step_id, caller=account)
    emit(output, result, lambda: print_yaml(result))


@app.command("waiting")
def waiting(
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """Steps waiting for an action (ListWaitingWorkflowSteps)."""
    from kiln.services.workflows.executions import list_waiting_workflow_steps

    result = list_waiting_workflow_steps(caller=account, region=in_region(region))
    rows = result["steps"]
    emit(output, result, lambda: table(
        ["STEP EXECUTION", "IMAGE", "NAME", "STARTED"],
        [[r["stepExecutionId"], r["imageBuildVersionArn"], r["name"], r.get("startTime", "")] for r in rows]))


@app.command("send-action")
def send_action(
    step_id: Annotated[str, typer.Argument(help="Step execution id of the waiting step (step-…).")],
    image_arn: Annotated[str, typer.Argument(help="Image build version ARN.")],
    action: Annotated[str, typer.Argument(help="RESUME or STOP.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (becomes the step's reason output).")] = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """Resume or stop a step waiting at WaitForAction (SendWorkflowStepAction)."""
    from kiln.services.workflows.executions import send_workflow_step_action

    in_region(region)
    result = send_workflow_step_action(step_id, image_arn, action.upper(), reason, caller=account)
    emit(output, result, f"{action.upper()} sent to {step_id}")
