"""``kiln container-recipe create|list|get|delete``: container recipes (built with ``kiln image create``)."""

from __future__ import annotations

from types import ModuleType
from typing import Annotated

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, table
from kiln.cli.resource_verbs import ResourceVerbs, in_region

app = typer.Typer()


def _service() -> ModuleType:
    from kiln.services.container_recipes import resource

    return resource


verbs = ResourceVerbs(app, _service, "containerRecipeArn", arn_help="Container recipe ARN.")
verbs.body_command(
    "create", "create_container_recipe",
    "Create a container recipe version from a CreateContainerRecipe body; prints its ARN.",
)


@app.command("list")
def list_(
    owner: Annotated[str, typer.Option("--owner", help="Self or Amazon.")] = "Self",
    name: Annotated[str | None, typer.Option("--name")] = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """List the account's container recipes."""
    from kiln.services.container_recipes.resource import list_container_recipes

    result = list_container_recipes(owner=owner, name=name, account=account, region=in_region(region))
    rows = result["containerRecipeSummaryList"]
    emit(output, result, lambda: table(
        ["ARN", "PARENT IMAGE", "CREATED"], [[r["arn"], r["parentImage"], r["dateCreated"]] for r in rows]
    ))


verbs.get("get_container_recipe", "containerRecipe", "Show a container recipe.")
verbs.delete("delete_container_recipe", "Delete a container recipe version.")
