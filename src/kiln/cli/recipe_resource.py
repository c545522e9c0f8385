"""``kiln recipe create|list|get|delete``: image recipes."""

from __future__ import annotations

from types import ModuleType
from typing import Annotated

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, table
from kiln.cli.resource_verbs import ResourceVerbs, in_region

app = typer.Typer()


def _service() -> ModuleType:
    from kiln.services.recipes import resource

    return resource


verbs = ResourceVerbs(app, _service, "imageRecipeArn", arn_help="Image recipe ARN.")
verbs.body_command(
    "create", "create_image_recipe", "Create an image recipe version from a CreateImageRecipe body; prints its ARN."
)


@app.command("list")
def list_(
    owner: Annotated[str, typer.Option("--owner", help="Self or Amazon.")] = "Self",
    name: Annotated[str | None, typer.Option("--name")] = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """List the account's image recipes."""
    from kiln.services.recipes.resource import list_image_recipes

    result = list_image_recipes(owner=owner, name=name, account=account, region=in_region(region))
    rows = result["imageRecipeSummaryList"]
    emit(
        output,
        result,
        lambda: table(
            ["ARN", "PARENT IMAGE", "CREATED"], [[r["arn"], r["parentImage"], r["dateCreated"]] for r in rows]
        ),
    )


verbs.get("get_image_recipe", "imageRecipe", "Show an image recipe.")
verbs.delete("delete_image_recipe", "Delete an image recipe version (refused while a pipeline uses it).")
