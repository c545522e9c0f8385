"""``kiln lifecycle``: create, update, get, list, delete, preview and apply lifecycle policies."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from kiln.cli.output import OutputFormat, check_format, emit
from kiln.errors import InvalidInput

InputYaml = Annotated[
    str | None, typer.Option("--cli-input-yaml", help="Request body as YAML (a path, or file://path).")
]
InputJson = Annotated[
    str | None, typer.Option("--cli-input-json", help="Request body as JSON (a path, or file://path).")
]
AsOf = Annotated[
    str | None, typer.Option("--as-of", help="Evaluate as of this time (ISO 8601; default now, UTC).")
]


def _read_body(yaml_path: str | None, json_path: str | None) -> dict[str, Any]:
    if (yaml_path is None) == (json_path is None):
        raise InvalidInput("give exactly one of --cli-input-yaml or --cli-input-json")
    raw = yaml_path if yaml_path is not None else json_path
    assert raw is not None
    option = "--cli-input-yaml" if yaml_path is not None else "--cli-input-json"
    path = Path(raw.removeprefix("file://"))
    try:
        text = path.read_text()
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}", location=option) from None
    try:
        if yaml_path is not None:
            import yaml

            data = yaml.safe_load(text)
        else:
            import json

            data = json.loads(text)
    except Exception as error:
        raise InvalidInput(
            f"{path} is not valid {'YAML' if yaml_path else 'JSON'}: {error}", location=option
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} must hold one object (the request body)", location=option)
    return data


def parse_time(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{value!r} is not an ISO 8601 time", location="--as-of") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", exclude_none=True)


def register(app: typer.Typer) -> None:
    @app.command("create")
    def create(
        yaml_file: InputYaml = None, json_file: InputJson = None, output: OutputFormat = "text"
    ) -> None:
        """Create a lifecycle policy from a CreateLifecyclePolicy request body; prints its ARN."""
        from kiln.model.lifecycle import CreateLifecyclePolicyRequest, parse
        from kiln.services.lifecycle.policies import create_policy

        check_format(output)
        request = parse(CreateLifecyclePolicyRequest, _read_body(yaml_file, json_file))
        arn = create_policy(request)
        emit(output, {"clientToken": request.clientToken, "lifecyclePolicyArn": arn}, arn)

    @app.command("update")
    def update(
        yaml_file: InputYaml = None, json_file: InputJson = None, output: OutputFormat = "text"
    ) -> None:
        """Replace a lifecycle policy from an UpdateLifecyclePolicy request body; prints its ARN."""
        from kiln.model.lifecycle import UpdateLifecyclePolicyRequest, parse
        from kiln.services.lifecycle.policies import update_policy

        check_format(output)
        arn = update_policy(parse(UpdateLifecyclePolicyRequest, _read_body(yaml_file, json_file)))
        emit(output, {"lifecyclePolicyArn": arn}, arn)

    @app.command("get")
    def get(
        policy: Annotated[str, typer.Argument(help="Policy ARN or name.")], output: OutputFormat = "text"
    ) -> None:
        """Show a lifecycle policy (GetLifecyclePolicy)."""
        import yaml

        from kiln.services.lifecycle.policies import get_policy

        check_format(output)
        data = _dump(get_policy(policy))
        emit(
            output, {"lifecyclePolicy": data}, lambda: sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
        )

    @app.command("list")
    def list_(
        name: Annotated[str | None, typer.Option("--name", help="Only this name.")] = None,
        status: Annotated[str | None, typer.Option("--status", help="ENABLED or DISABLED.")] = None,
        resource_type: Annotated[
            str | None, typer.Option("--resource-type", help="AMI_IMAGE or CONTAINER_IMAGE.")
        ] = None,
        output: OutputFormat = "text",
    ) -> None:
        """List lifecycle policies (ListLifecyclePolicies)."""
        from kiln.cli.output import table
        from kiln.services.lifecycle.policies import list_policies

        check_format(output)
        policies = list_policies(name=name, status=status, resource_type=resource_type)
        emit(
            output,
            {"lifecyclePolicySummaryList": [_dump(p) for p in policies]},
            lambda: table(
                ("ARN", "STATUS", "TYPE", "LAST RUN"),
                [(p.arn, p.status.value, p.resourceType.value, p.dateLastRun or "never") for p in policies],
            ),
        )

    @app.command("delete")
    def delete(
        policy: Annotated[str, typer.Argument(help="Policy ARN or name.")], output: OutputFormat = "text"
    ) -> None:
        """Delete a lifecycle policy (its images are untouched)."""
        from kiln.services.lifecycle.policies import delete_policy

        check_format(output)
        arn = delete_policy(policy)
        emit(output, {"lifecyclePolicyArn": arn}, arn)

    @app.command("preview")
    def preview(
        policy: Annotated[str, typer.Argument(help="Policy ARN or name.")],
        as_of: AsOf = None,
        output: OutputFormat = "text",
    ) -> None:
        """Show what the policy would do now (or --as-of), for every image, AMI and snapshot, and why."""
        from kiln.services.lifecycle import preview as lifecycle_preview
        from kiln.services.lifecycle.runner import preview as evaluate_now

        fmt = check_format(output)
        found, plan = evaluate_now(policy, as_of=parse_time(as_of))
        render = lifecycle_preview.to_json if fmt == "json" else lifecycle_preview.to_text
        sys.stdout.write(render(plan, policy=found.arn))

    @app.command("run")
    def apply(
        policy: Annotated[str, typer.Argument(help="Policy ARN or name.")],
        as_of: AsOf = None,
        output: OutputFormat = "text",
    ) -> None:
        """Run the policy once now: deprecate, disable, deregister and delete as it says."""
        from kiln.services.lifecycle.policies import resolve_arn
        from kiln.services.lifecycle.runner import run

        check_format(output)
        execution = run(resolve_arn(policy), as_of=parse_time(as_of))
        emit(
            output,
            {"lifecycleExecution": _dump(execution)},
            f"{execution.lifecycleExecutionId} {execution.state.status.value}"
            + (f" ({execution.state.reason})" if execution.state.reason else ""),
        )

    app.command("apply", hidden=True, help="Same as run.")(apply)

    @app.command("executions")
    def executions(
        policy: Annotated[str, typer.Argument(help="Policy ARN or name.")], output: OutputFormat = "text"
    ) -> None:
        """List the policy's executions, newest first (ListLifecycleExecutions)."""
        from kiln.cli.output import table
        from kiln.services.lifecycle.policies import list_executions

        check_format(output)
        found = list_executions(policy)
        emit(
            output,
            {"lifecycleExecutions": [_dump(e) for e in found]},
            lambda: table(
                ("EXECUTION", "STATUS", "START", "END", "REASON"),
                [
                    (e.lifecycleExecutionId, e.state.status.value, e.startTime, e.endTime, e.state.reason)
                    for e in found
                ],
            ),
        )

    @app.command("execution-resources")
    def execution_resources(
        execution_id: Annotated[str, typer.Argument(help="Lifecycle execution id (lce-…).")],
        parent: Annotated[
            str | None, typer.Option("--parent-resource-id", help="An image ARN: list its AMIs.")
        ] = None,
        output: OutputFormat = "text",
    ) -> None:
        """List what an execution did, per resource (ListLifecycleExecutionResources)."""
        from kiln.cli.output import table
        from kiln.services.lifecycle.policies import get_execution, list_execution_resources

        check_format(output)
        state = get_execution(execution_id).state
        found = list_execution_resources(execution_id, parent)
        emit(
            output,
            {
                "lifecycleExecutionId": execution_id,
                "lifecycleExecutionState": _dump(state),
                "resources": [_dump(r) for r in found],
            },
            lambda: table(
                ("RESOURCE", "REGION", "ACTION", "STATUS", "REASON"),
                [
                    (r.resourceId, r.region, r.action.name.value, r.state.status.value, r.state.reason)
                    for r in found
                ],
            ),
        )

    @app.command("cancel")
    def cancel(
        execution_id: Annotated[str, typer.Argument(help="Lifecycle execution id (lce-…).")],
        output: OutputFormat = "text",
    ) -> None:
        """Cancel a running execution: it stops before its next step; nothing done is undone."""
        from kiln.services.lifecycle.policies import cancel_execution

        check_format(output)
        found = cancel_execution(execution_id)
        emit(output, {"lifecycleExecutionId": found}, found)
