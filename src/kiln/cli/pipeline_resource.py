"""``kiln pipeline create|update|get|list|delete|start|images|executions|schedule``: image pipelines."""

from __future__ import annotations

from typing import Annotated

import typer

from kiln.cli.output import OutputFormat, emit
from kiln.cli.resource_input import cli_input, parse_tags, print_rows, print_yaml

JSON_HELP = "Request body: JSON text, file://PATH, a path or - for stdin."
YAML_HELP = "Request body as YAML: file://PATH, a path or - for stdin."
ARN_HELP = "Image pipeline ARN (or image-pipeline/NAME)."


def register(app: typer.Typer) -> None:
    @app.command("create")
    def create(
        cli_input_json: Annotated[str | None, typer.Option("--cli-input-json", help=JSON_HELP)] = None,
        cli_input_yaml: Annotated[str | None, typer.Option("--cli-input-yaml", help=YAML_HELP)] = None,
        output: OutputFormat = "text",
    ) -> None:
        """Create an image pipeline (CreateImagePipeline body); prints its ARN."""
        from kiln.services.pipelines import create_image_pipeline

        result = create_image_pipeline(cli_input(cli_input_json, cli_input_yaml))
        emit(output, result, result["imagePipelineArn"])

    @app.command("update")
    def update(
        cli_input_json: Annotated[str | None, typer.Option("--cli-input-json", help=JSON_HELP)] = None,
        cli_input_yaml: Annotated[str | None, typer.Option("--cli-input-yaml", help=YAML_HELP)] = None,
        output: OutputFormat = "text",
    ) -> None:
        """Replace a pipeline's settings (UpdateImagePipeline body, naming imagePipelineArn)."""
        from kiln.services.pipelines import update_image_pipeline

        result = update_image_pipeline(cli_input(cli_input_json, cli_input_yaml))
        emit(output, result, result["imagePipelineArn"])

    @app.command("get")
    def get(arn: Annotated[str, typer.Argument(help=ARN_HELP)], output: OutputFormat = "text") -> None:
        """Show a pipeline, with its next run and failure count."""
        from kiln.services.pipelines import get_image_pipeline

        result = get_image_pipeline(arn)
        emit(output, result, lambda: print_yaml(result["imagePipeline"]))

    @app.command("list")
    def list_(
        name: Annotated[str | None, typer.Option("--name")] = None,
        status: Annotated[str | None, typer.Option("--status", help="ENABLED or DISABLED.")] = None,
        output: OutputFormat = "text",
    ) -> None:
        """List image pipelines."""
        from kiln.services.pipelines import list_image_pipelines

        filters = [{"name": key, "values": [value]} for key, value in (("name", name), ("status", status)) if value]
        result = list_image_pipelines(filters=filters or None)
        rows = result["imagePipelineList"]
        emit(
            output,
            result,
            lambda: print_rows(
                ["ARN", "STATUS", "NEXT RUN", "LAST RUN"],
                [[r["arn"], r["status"], r.get("dateNextRun"), r.get("lastRunStatus")] for r in rows],
            ),
        )

    @app.command("delete")
    def delete(arn: Annotated[str, typer.Argument(help=ARN_HELP)], output: OutputFormat = "text") -> None:
        """Delete a pipeline (refused while one of its builds runs)."""
        from kiln.services.pipelines import delete_image_pipeline

        result = delete_image_pipeline(arn)
        emit(output, result, f"deleted {result['imagePipelineArn']}")

    @app.command("start")
    def start(
        arn: Annotated[str, typer.Argument(help=ARN_HELP)],
        tags: Annotated[list[str] | None, typer.Option("--tags", help="KEY=VALUE tags for the image.")] = None,
        client_token: Annotated[str | None, typer.Option("--client-token")] = None,
        output: OutputFormat = "text",
    ) -> None:
        """Build the pipeline now (StartImagePipelineExecution); prints the image ARN."""
        from kiln.cli.output import progress
        from kiln.errors import KilnError
        from kiln.services import images
        from kiln.services.pipeline_runs import start_image_pipeline_execution

        body: dict[str, object] = {"imagePipelineArn": arn}
        if tags:
            body["tags"] = parse_tags(tags)
        if client_token:
            body["clientToken"] = client_token
        result = start_image_pipeline_execution(body, progress=progress)
        image_arn = result["imageBuildVersionArn"]
        row = images.get_row(image_arn)
        emit(output, {**result, "status": row.status}, image_arn)
        if row.status != "AVAILABLE":
            raise KilnError(f"image {image_arn} is {row.status}: {row.reason or ''}".rstrip(": "),
                            hint=f"kiln image logs {image_arn}")

    @app.command("run-build", hidden=True)
    def run_build(image_arn: Annotated[str, typer.Argument(help="Image ARN of a started execution.")]) -> None:
        """Worker: run the build of a pipeline execution (started by the scheduler)."""
        from kiln.cli.output import progress
        from kiln.services.pipeline_runs import execute_image

        status = execute_image(image_arn, progress=progress)
        progress(f"{image_arn}: {status}")

    @app.command("images")
    def images_(arn: Annotated[str, typer.Argument(help=ARN_HELP)], output: OutputFormat = "text") -> None:
        """The images a pipeline built (ListImagePipelineImages)."""
        from kiln.services.pipelines import list_image_pipeline_images

        result = list_image_pipeline_images(arn)
        rows = result["imageSummaryList"]
        emit(
            output,
            result,
            lambda: print_rows(
                ["ARN", "STATUS", "CREATED"], [[r["arn"], r["state"]["status"], r["dateCreated"]] for r in rows]
            ),
        )

    @app.command("executions")
    def executions(arn: Annotated[str, typer.Argument(help=ARN_HELP)], output: OutputFormat = "text") -> None:
        """Every run decision of a pipeline: started, skipped (and why), failed to start."""
        from kiln.services.pipeline_runs import list_pipeline_executions

        entries = list_pipeline_executions(arn)
        emit(
            output,
            {"executions": entries},
            lambda: print_rows(
                ["TIME", "TRIGGER", "DECISION", "IMAGE", "OUTCOME", "REASON"],
                [[e["time"], e["trigger"], e["decision"], e.get("imageArn"), e.get("outcome"), e.get("reason")]
                 for e in entries],
            ),
        )

    @app.command("schedule")
    def schedule(
        arn: Annotated[str, typer.Argument(help=ARN_HELP)],
        next_: Annotated[int, typer.Option("--next", min=1, max=1000, help="How many run times.")] = 5,
        output: OutputFormat = "text",
    ) -> None:
        """The pipeline's next scheduled run times, in its timezone."""
        from kiln.services.pipeline_jobs import next_runs

        times = [moment.isoformat() for moment in next_runs(arn, next_)]
        emit(output, {"imagePipelineArn": arn, "nextRuns": times}, "\n".join(times) or "no schedule")
