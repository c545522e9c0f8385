"""``kiln recipe create|list|get|delete``: image recipes."""

from __future__ import annotations

from types import ModuleType
from typing import Annotated

import typer

from kiln.cli.output import OutputFormat, emit
from kiln.cli.resource_input import ResourceVerbs, print_rows


def _service() -> ModuleType:
    from kiln.services.recipes import resource

    return resource


def register(app: typer.Typer) -> None:
    verbs = ResourceVerbs(
        app,
        _service,
        "imageRecipeArn",
        arn_help="Image recipe ARN.",
        json_help="CreateImageRecipe body: JSON text, file://PATH, a path or - for stdin.",
        yaml_help="CreateImageRecipe body as YAML: file://PATH, a path or - for stdin.",
    )
    verbs.body_command("create", "create_image_recipe", "Create an image recipe version; prints its ARN.")

    @app.command("list")
    def list_(
        owner: Annotated[str, typer.Option("--owner", help="Self or Amazon.")] = "Self",
        name: Annotated[str | None, typer.Option("--name")] = None,
        output: OutputFormat = "text",
    ) -> None:
        """List image recipes."""
        from kiln.services.recipes.resource import list_image_recipes

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

    verbs.get("get_image_recipe", "imageRecipe", "Show an image recipe.")
    verbs.delete("delete_image_recipe", "Delete an image recipe version (refused while a pipeline uses it).")
