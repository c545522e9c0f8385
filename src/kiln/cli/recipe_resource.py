"""``kiln recipe create|list|get|delete``: image recipes."""

from __future__ import annotations

from typing import Annotated

import typer

from kiln.cli.output import OutputFormat, emit
from kiln.cli.resource_input import cli_input, print_rows, print_yaml

JSON_HELP = "CreateImageRecipe body: JSON text, file://PATH, a path or - for stdin."
YAML_HELP = "CreateImageRecipe body as YAML: file://PATH, a path or - for stdin."


def register(app: typer.Typer) -> None:
    @app.command("create")
    def create(
        cli_input_json: Annotated[str | None, typer.Option("--cli-input-json", help=JSON_HELP)] = None,
        cli_input_yaml: Annotated[str | None, typer.Option("--cli-input-yaml", help=YAML_HELP)] = None,
        output: OutputFormat = "text",
    ) -> None:
        """Create an image recipe version; prints its ARN."""
        from kiln.services.recipes import create_image_recipe

        result = create_image_recipe(cli_input(cli_input_json, cli_input_yaml))
        emit(output, result, result["imageRecipeArn"])

    @app.command("list")
    def list_(
        owner: Annotated[str, typer.Option("--owner", help="Self or Amazon.")] = "Self",
        name: Annotated[str | None, typer.Option("--name")] = None,
        output: OutputFormat = "text",
    ) -> None:
        """List image recipes."""
        from kiln.services.recipes import list_image_recipes

        result = list_image_recipes(owner=owner, name=name)
        rows = result["imageRecipeSummaryList"]
        emit(
            output,
            result,
            lambda: print_rows(
                ["ARN", "PARENT IMAGE", "CREATED"],
                [[r["arn"], r["parentImage"], r["dateCreated"]] for r in rows],
            ),
        )

    @app.command("get")
    def get(
        arn: Annotated[str, typer.Argument(help="Image recipe ARN.")], output: OutputFormat = "text"
    ) -> None:
        """Show an image recipe."""
        from kiln.services.recipes import get_image_recipe

        result = get_image_recipe(arn)
        emit(output, result, lambda: print_yaml(result["imageRecipe"]))

    @app.command("delete")
    def delete(
        arn: Annotated[str, typer.Argument(help="Image recipe ARN.")], output: OutputFormat = "text"
    ) -> None:
        """Delete an image recipe version (refused while a pipeline uses it)."""
        from kiln.services.recipes import delete_image_recipe

        result = delete_image_recipe(arn)
        emit(output, result, f"deleted {result['imageRecipeArn']}")
