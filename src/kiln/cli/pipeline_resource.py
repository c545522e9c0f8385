"""``kiln pipeline create|update|get|list|delete|start|images|executions|schedule``: image pipelines."""

from __future__ import annotations

from types import ModuleType
from typing import Annotated, Any

import typer

from kiln.cli.options import DEFAULT_REGION, Account, CliInputJson, CliInputYaml, Output, Region
from kiln.cli.output import emit, table
from kiln.cli.resource_verbs import ResourceVerbs, in_region

ARN_HELP = "Image pipeline ARN (or image-pipeline/NAME)."

app = typer.Typer()


def _service() -> ModuleType:
    from kiln.services.pipelines import resource

    return resource


verbs = ResourceVerbs(app, _service, "imagePipelineArn", arn_help=ARN_HELP)
APPROVAL = typer.Option("--approval", help="Wait for `kiln image approve|reject` after the tests: the managed "
                        "test-and-approve-image in place of test-image in the pipeline's workflows.")


def _body(cli_input_json: str | None, cli_input_yaml: str | None, approval: bool, region: str) -> dict[str, Any]:
    from kiln.cli.resource_input import cli_input
    from kiln.services.pipelines.resource import switch_approval

    return switch_approval(cli_input(cli_input_json, cli_input_yaml), region, approval=approval)


@app.command("create")
def create(cli_input_json: CliInputJson = None, cli_input_yaml: CliInputYaml = None,
           approval: Annotated[bool, APPROVAL] = False, account: Account = "", region: Region = DEFAULT_REGION,
           output: Output = "text") -> None:
    """Create an image pipeline (CreateImagePipeline body); prints its ARN."""
    from kiln.services.pipelines.resource import create_image_pipeline

    where = in_region(region)
    result = create_image_pipeline(_body(cli_input_json, cli_input_yaml, approval, where), account=account,
                                   region=where)
    emit(output, result, result["imagePipelineArn"])


@app.command("update")
def update(cli_input_json: CliInputJson = None, cli_input_yaml: CliInputYaml = None,
           approval: Annotated[bool, APPROVAL] = False, account: Account = "", region: Region = DEFAULT_REGION,
           output: Output = "text") -> None:
    """Replace a pipeline's settings (UpdateImagePipeline body, naming imagePipelineArn)."""
    from kiln.services.pipelines.resource import update_image_pipeline

    where = in_region(region)
    result = update_image_pipeline(_body(cli_input_json, cli_input_yaml, approval, where), caller=account,
                                   region=where)
    emit(output, result, result["imagePipelineArn"])


verbs.get("get_image_pipeline", "imagePipeline",
          "Show one of the account's pipelines, with its next run and failure count.")


@app.command("list")
def list_(
    name: Annotated[str | None, typer.Option("--name")] = None,
    status: Annotated[str | None, typer.Option("--status", help="ENABLED or DISABLED.")] = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """List the account's image pipelines."""
    from kiln.services.pipelines.resource import list_image_pipelines

    filters = [{"name": key, "values": [value]} for key, value in (("name", name), ("status", status)) if value]
    result = list_image_pipelines(filters=filters or None, account=account, region=in_region(region))
    rows = result["imagePipelineList"]
    emit(
        output,
        result,
        lambda: table(
            ["ARN", "STATUS", "NEXT RUN", "LAST RUN"],
            [[r["arn"], r["status"], r.get("dateNextRun"), r.get("lastRunStatus")] for r in rows],
        ),
    )
verbs.delete("delete_image_pipeline", "Delete a pipeline (refused while one of its builds runs).")


@app.command("start")
def start(
    arn: Annotated[str, typer.Argument(help=ARN_HELP)],
    tags: Annotated[list[str] | None, typer.Option("--tags", help="KEY=VALUE tags for the image.")] = None,
    client_token: Annotated[str | None, typer.Option("--client-token")] = None,
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Build the pipeline now (StartImagePipelineExecution), in its region, as its account (the
    caller's); prints the image ARN."""
    from kiln.cli.output import progress
    from kiln.cli.resource_input import tags as resource_tags
    from kiln.errors import KilnError, NotFound
    from kiln.services.accounts.regions import require_region
    from kiln.services.builds import records as images
    from kiln.services.pipelines.runs import start_image_pipeline_execution

    require_region(region)
    parts = arn.split(":")
    if len(parts) > 4 and parts[0] == "arn" and parts[3] != region:
        raise NotFound(f"image pipeline {arn} is not in region {region}", location="--region",
                       hint=f"--region {parts[3]}")

    body: dict[str, object] = {"imagePipelineArn": arn}
    if tags:
        body["tags"] = resource_tags(tags)
    if client_token:
        body["clientToken"] = client_token
    result = start_image_pipeline_execution(body, progress=progress, caller=account)
    image_arn = result["imageBuildVersionArn"]
    row = images.get_row(image_arn)
    emit(output, {**result, "status": row.status}, image_arn)
    if row.status != "AVAILABLE":
        raise KilnError(f"image {image_arn} is {row.status}: {row.reason or ''}".rstrip(": "),
                        hint=f"kiln image logs {image_arn}")


@app.command("images")
def images_(arn: Annotated[str, typer.Argument(help=ARN_HELP)], region: Region = DEFAULT_REGION,
            account: Account = "", output: Output = "text") -> None:
    """The images a pipeline built (ListImagePipelineImages)."""
    from kiln.services.pipelines.resource import list_image_pipeline_images

    result = list_image_pipeline_images(arn, caller=account, region=in_region(region))
    rows = result["imageSummaryList"]
    emit(
        output,
        result,
        lambda: table(
            ["ARN", "STATUS", "CREATED"], [[r["arn"], r["state"]["status"], r["dateCreated"]] for r in rows]
        ),
    )


@app.command("executions")
def executions(arn: Annotated[str, typer.Argument(help=ARN_HELP)], region: Region = DEFAULT_REGION,
               account: Account = "", output: Output = "text") -> None:
    """Every run decision of a pipeline: started, skipped (and why), failed to start."""
    from kiln.services.pipelines.runs import list_pipeline_executions

    entries = list_pipeline_executions(arn, caller=account, region=in_region(region))
    emit(
        output,
        {"executions": entries},
        lambda: table(
            ["TIME", "TRIGGER", "DECISION", "IMAGE", "OUTCOME", "REASON"],
            [[e["time"], e["trigger"], e["decision"], e.get("imageArn"), e.get("outcome"), e.get("reason")]
             for e in entries],
        ),
    )


@app.command("schedule")
def schedule(
    arn: Annotated[str, typer.Argument(help=ARN_HELP)],
    next_: Annotated[int, typer.Option("--next", min=1, max=1000, help="How many run times.")] = 5,
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """The pipeline's next scheduled run times, in its timezone."""
    from kiln.services.pipelines.jobs import next_runs

    times = [moment.isoformat() for moment in next_runs(arn, next_, caller=account, region=in_region(region))]
    emit(output, {"imagePipelineArn": arn, "nextRuns": times}, "\n".join(times) or "no schedule")
