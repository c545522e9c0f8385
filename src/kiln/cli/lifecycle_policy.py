"""``kiln lifecycle``: create, update, get, list, delete, preview and run lifecycle policies."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from kiln.cli.aws_options import DEFAULT_RATE, Backend, EndpointUrl, Profile, Rate, aws_region, choose
from kiln.cli.options import DEFAULT_REGION, Account, CliInputJson, CliInputYaml, Output, Region
from kiln.cli.output import check_format, emit
from kiln.errors import InvalidInput

app = typer.Typer()

Policy = Annotated[str, typer.Argument(help="Policy ARN or name.")]
ExecutionId = Annotated[str, typer.Argument(help="Lifecycle execution id (lce-…).")]
AmiName = Annotated[
    str | None, typer.Option("--name", help="With --backend aws: only AMIs whose name matches this glob.")
]
AsOf = Annotated[
    str | None, typer.Option("--as-of", help="Evaluate as of this time (ISO 8601; default now, UTC).")
]


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", exclude_none=True)


@app.command("create")
def create(
    cli_input_yaml: CliInputYaml = None,
    cli_input_json: CliInputJson = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """Create a lifecycle policy from a CreateLifecyclePolicy request body; prints its ARN.

    The policy acts on the account's images built in the region (and their AMIs the account owns)."""
    from kiln.cli.resource_input import cli_input
    from kiln.model.lifecycle import CreateLifecyclePolicyRequest, parse
    from kiln.services.lifecycle.policies import create_policy

    check_format(output)
    request = parse(CreateLifecyclePolicyRequest, cli_input(cli_input_json, cli_input_yaml))
    arn = create_policy(request, account=account, region=region)
    emit(output, {"clientToken": request.clientToken, "lifecyclePolicyArn": arn}, arn)


@app.command("update")
def update(
    cli_input_yaml: CliInputYaml = None,
    cli_input_json: CliInputJson = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """Replace a lifecycle policy from an UpdateLifecyclePolicy request body; prints its ARN."""
    from kiln.cli.resource_input import cli_input
    from kiln.model.lifecycle import UpdateLifecyclePolicyRequest, parse
    from kiln.services.lifecycle.policies import update_policy

    check_format(output)
    request = parse(UpdateLifecyclePolicyRequest, cli_input(cli_input_json, cli_input_yaml))
    arn = update_policy(request, caller=account, region=region)
    emit(output, {"lifecyclePolicyArn": arn}, arn)


@app.command("get")
def get(
    policy: Policy, account: Account = "", region: Region = DEFAULT_REGION, output: Output = "text"
) -> None:
    """Show a lifecycle policy (GetLifecyclePolicy)."""
    from kiln.cli.output import print_yaml
    from kiln.services.lifecycle.policies import get_policy, resolve_arn

    check_format(output)
    data = _dump(get_policy(resolve_arn(policy, account=account, region=region), caller=account))
    emit(
        output, {"lifecyclePolicy": data}, lambda: print_yaml(data)
    )


@app.command("list")
def list_(
    name: Annotated[str | None, typer.Option("--name", help="Only this name.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="ENABLED or DISABLED.")] = None,
    resource_type: Annotated[
        str | None, typer.Option("--resource-type", help="AMI_IMAGE or CONTAINER_IMAGE.")
    ] = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """List the account's lifecycle policies in the region (ListLifecyclePolicies)."""
    from kiln.cli.output import table
    from kiln.services.lifecycle.policies import list_policies

    check_format(output)
    policies = list_policies(
        name=name, status=status, resource_type=resource_type, account=account, region=region
    )
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
    policy: Policy, account: Account = "", region: Region = DEFAULT_REGION, output: Output = "text"
) -> None:
    """Delete a lifecycle policy (its images are untouched)."""
    from kiln.services.lifecycle.policies import delete_policy, resolve_arn

    check_format(output)
    arn = delete_policy(resolve_arn(policy, account=account, region=region), caller=account)
    emit(output, {"lifecyclePolicyArn": arn}, arn)


def _aws_plan(policy: str, account: str, region: str, as_of: str | None, name: str | None, profile: str | None,
              endpoint_url: str | None, rate: float) -> Any:
    """The kiln policy (its ARN, or its name in kiln's account and default region) planned over the AWS
    account's AMIs in --region (the AWS chain's region when not given)."""
    from kiln.cli.resource_input import parse_time
    from kiln.services.aws_accounts import account as aws_account
    from kiln.services.aws_accounts import lifecycle as aws_lifecycle
    from kiln.services.lifecycle.policies import check_caller, get_policy, resolve_arn

    arn = resolve_arn(policy, account=account, region=DEFAULT_REGION)
    check_caller(arn, account)
    found = get_policy(arn, caller=account)
    aws_lifecycle.adapt(found)  # refuse an unusable policy before any AWS call
    target = aws_account.connect(aws_region(region), profile, endpoint_url, rate)
    return found.arn, aws_lifecycle.plan(target, found, name_glob=name, as_of=parse_time(as_of))


def _warn_unresolved(unresolved: list[str]) -> None:
    for line in unresolved:
        typer.echo(f"warning: {line}", err=True)


@app.command("preview")
def preview(
    policy: Policy,
    as_of: AsOf = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
    backend: Backend = None,
    name: AmiName = None,
    profile: Profile = None,
    endpoint_url: EndpointUrl = None,
    rate: Rate = DEFAULT_RATE,
) -> None:
    """Show what the policy would do now (or --as-of), for every image, AMI and snapshot: the account
    and region it is in, the action, the exclusion rule that held, and why. With --backend aws: over
    the AWS account's own AMIs in --region."""
    from kiln.cli.resource_input import parse_time
    from kiln.services.lifecycle import preview as lifecycle_preview
    from kiln.services.lifecycle.policies import check_caller, resolve_arn
    from kiln.services.lifecycle.runner import preview as evaluate_now

    fmt = check_format(output)
    reach = choose(backend, region, account, profile, endpoint_url)
    if reach is not None:
        policy_arn, planned = _aws_plan(policy, account, region, as_of, name, reach.profile, reach.endpoint_url,
                                        rate)
        _warn_unresolved(planned.unresolved)
        if fmt == "json":
            data = lifecycle_preview.to_data(planned.plan, policy=policy_arn)
            data.update(backend="aws", accountId=planned.account.account_id, region=planned.account.region,
                        unresolvedReferences=planned.unresolved)
            emit(output, data)
        else:
            sys.stdout.write(lifecycle_preview.to_text(planned.plan, policy=policy_arn))
        return
    if name:
        raise InvalidInput("--name goes with --backend aws", location="--name")
    arn = resolve_arn(policy, account=account, region=region)
    check_caller(arn, account)
    found, plan = evaluate_now(arn, as_of=parse_time(as_of))
    render = lifecycle_preview.to_json if fmt == "json" else lifecycle_preview.to_text
    sys.stdout.write(render(plan, policy=found.arn))


@app.command("run")
def apply(
    policy: Policy,
    as_of: AsOf = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
    backend: Backend = None,
    name: AmiName = None,
    profile: Profile = None,
    endpoint_url: EndpointUrl = None,
    rate: Rate = DEFAULT_RATE,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="With --backend aws: every call with DryRun.")] = False,
) -> None:
    """Run the policy once now: deprecate, disable, deregister and delete as it says. With --backend
    aws: on the AWS account's own AMIs in --region (exit 1 when a step failed)."""
    from kiln.cli.resource_input import parse_time
    from kiln.services.aws_accounts import lifecycle as aws_lifecycle
    from kiln.services.lifecycle.policies import check_caller, resolve_arn
    from kiln.services.lifecycle.runner import run

    check_format(output)
    reach = choose(backend, region, account, profile, endpoint_url)
    if reach is not None:
        _, planned = _aws_plan(policy, account, region, as_of, name, reach.profile, reach.endpoint_url, rate)
        _warn_unresolved(planned.unresolved)
        result = aws_lifecycle.run(planned, dry_run=dry_run)
        emit(output, result, lambda: _aws_steps(result))
        if result["Failed"]:
            raise typer.Exit(1)
        return
    if name or dry_run:
        raise InvalidInput("--name and --dry-run go with --backend aws (locally, see `kiln lifecycle preview`)",
                           location="--backend")
    arn = resolve_arn(policy, account=account, region=region)
    check_caller(arn, account)
    execution = run(arn, as_of=parse_time(as_of))
    emit(
        output,
        {"lifecycleExecution": _dump(execution)},
        f"{execution.lifecycleExecutionId} {execution.state.status.value}"
        + (f" ({execution.state.reason})" if execution.state.reason else ""),
    )


def _aws_steps(result: dict[str, Any]) -> None:
    from kiln.cli.output import table

    table(("KIND", "RESOURCE", "ACTION", "STATUS", "REASON"),
          [(s["Kind"], s["ResourceId"], s["Action"], s["Status"], s["Reason"]) for s in result["Steps"]])
    typer.echo(f"{len(result['Steps'])} step(s), {result['Failed']} failed"
               + (" (dry run: nothing changed)" if result["DryRun"] else ""))


app.command("apply", hidden=True, help="Same as run.")(apply)


@app.command("executions")
def executions(
    policy: Policy, account: Account = "", region: Region = DEFAULT_REGION, output: Output = "text"
) -> None:
    """List the policy's executions, newest first (ListLifecycleExecutions)."""
    from kiln.cli.output import table
    from kiln.services.lifecycle.policies import check_caller, list_executions, resolve_arn

    check_format(output)
    arn = resolve_arn(policy, account=account, region=region)
    check_caller(arn, account)
    found = list_executions(arn)
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
    execution_id: ExecutionId,
    parent: Annotated[
        str | None, typer.Option("--parent-resource-id", help="An image ARN: list its AMIs.")
    ] = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """List what an execution did, per resource (ListLifecycleExecutionResources)."""
    from kiln.cli.output import table
    from kiln.services.lifecycle.policies import get_execution, list_execution_resources

    check_format(output)
    state = get_execution(execution_id, caller=account, region=region).state
    found = list_execution_resources(execution_id, parent, caller=account, region=region)
    emit(
        output,
        {
            "lifecycleExecutionId": execution_id,
            "lifecycleExecutionState": _dump(state),
            "resources": [_dump(r) for r in found],
        },
        lambda: table(
            ("RESOURCE", "ACCOUNT", "REGION", "ACTION", "STATUS", "REASON"),
            [
                (r.resourceId, r.accountId, r.region, r.action.name.value, r.state.status.value, r.state.reason)
                for r in found
            ],
        ),
    )


@app.command("cancel")
def cancel(
    execution_id: ExecutionId,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """Cancel a running execution: it stops before its next step; nothing done is undone."""
    from kiln.services.lifecycle.policies import cancel_execution

    check_format(output)
    found = cancel_execution(execution_id, caller=account, region=region)
    emit(output, {"lifecycleExecutionId": found}, found)
