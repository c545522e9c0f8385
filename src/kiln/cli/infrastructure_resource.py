"""``kiln infrastructure create|update|list|get|delete``: infrastructure configurations."""

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
        """Create an infrastructure configuration; prints its ARN."""
        from kiln.services.infrastructure import create_infrastructure_configuration

        result = create_infrastructure_configuration(cli_input(cli_input_json, cli_input_yaml))
        emit(output, result, result["infrastructureConfigurationArn"])

    @app.command("update")
    def update(
        cli_input_json: Annotated[str | None, typer.Option("--cli-input-json", help=JSON_HELP)] = None,
        cli_input_yaml: Annotated[str | None, typer.Option("--cli-input-yaml", help=YAML_HELP)] = None,
        output: OutputFormat = "text",
    ) -> None:
        """Replace an infrastructure configuration's settings (body names infrastructureConfigurationArn)."""
        from kiln.services.infrastructure import update_infrastructure_configuration

        result = update_infrastructure_configuration(cli_input(cli_input_json, cli_input_yaml))
        emit(output, result, result["infrastructureConfigurationArn"])

    @app.command("list")
    def list_(
        name: Annotated[str | None, typer.Option("--name")] = None, output: OutputFormat = "text"
    ) -> None:
        """List infrastructure configurations."""
        from kiln.services.infrastructure import list_infrastructure_configurations

        result = list_infrastructure_configurations(name=name)
        rows = result["infrastructureConfigurationSummaryList"]
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
        """Show an infrastructure configuration."""
        from kiln.services.infrastructure import get_infrastructure_configuration

        result = get_infrastructure_configuration(arn)
        emit(output, result, lambda: print_yaml(result["infrastructureConfiguration"]))

    @app.command("delete")
    def delete(arn: Annotated[str, typer.Argument(help="ARN.")], output: OutputFormat = "text") -> None:
        """Delete an infrastructure configuration (refused while a pipeline uses it)."""
        from kiln.services.infrastructure import delete_infrastructure_configuration

        result = delete_infrastructure_configuration(arn)
        emit(output, result, f"deleted {result['infrastructureConfigurationArn']}")
