"""``kiln distribution create|update|list|get|delete``: distribution configurations."""

from __future__ import annotations

from typing import Annotated

import typer

from kiln.cli.output import OutputFormat, emit
from kiln.cli.resource_input import cli_input, print_rows, print_yaml

JSON_HELP = "Request body: JSON text, file://PATH, a path or - for stdin."
YAML_HELP = "Request body as YAML: file://PATH, a path or - for stdin."


def register(app: typer.Typer) -> None:
    @app.command("create")
    def create(
        cli_input_json: Annotated[str | None, typer.Option("--cli-input-json", help=JSON_HELP)] = None,
        cli_input_yaml: Annotated[str | None, typer.Option("--cli-input-yaml", help=YAML_HELP)] = None,
        output: OutputFormat = "text",
    ) -> None:
        """Create an distribution configuration; prints its ARN."""
        from kiln.services.distribution import create_distribution_configuration

        result = create_distribution_configuration(cli_input(cli_input_json, cli_input_yaml))
        emit(output, result, result["distributionConfigurationArn"])

    @app.command("update")
    def update(
        cli_input_json: Annotated[str | None, typer.Option("--cli-input-json", help=JSON_HELP)] = None,
        cli_input_yaml: Annotated[str | None, typer.Option("--cli-input-yaml", help=YAML_HELP)] = None,
        output: OutputFormat = "text",
    ) -> None:
        """Replace an distribution configuration's settings (body names distributionConfigurationArn)."""
        from kiln.services.distribution import update_distribution_configuration

        result = update_distribution_configuration(cli_input(cli_input_json, cli_input_yaml))
        emit(output, result, result["distributionConfigurationArn"])

    @app.command("list")
    def list_(
        name: Annotated[str | None, typer.Option("--name")] = None, output: OutputFormat = "text"
    ) -> None:
        """List distribution configurations."""
        from kiln.services.distribution import list_distribution_configurations

        result = list_distribution_configurations(name=name)
        rows = result["distributionConfigurationSummaryList"]
        emit(
            output,
            result,
            lambda: print_rows(
                ["ARN", "CREATED", "UPDATED"],
                [[r["arn"], r["dateCreated"], r.get("dateUpdated")] for r in rows],
            ),
        )

    @app.command("get")
    def get(arn: Annotated[str, typer.Argument(help="ARN.")], output: OutputFormat = "text") -> None:
        """Show an distribution configuration."""
        from kiln.services.distribution import get_distribution_configuration

        result = get_distribution_configuration(arn)
        emit(output, result, lambda: print_yaml(result["distributionConfiguration"]))

    @app.command("delete")
    def delete(arn: Annotated[str, typer.Argument(help="ARN.")], output: OutputFormat = "text") -> None:
        """Delete an distribution configuration (refused while a pipeline uses it)."""
        from kiln.services.distribution import delete_distribution_configuration

        result = delete_distribution_configuration(arn)
        emit(output, result, f"deleted {result['distributionConfigurationArn']}")
