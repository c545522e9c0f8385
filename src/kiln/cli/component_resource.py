"""``kiln component create|list|get|delete``: components as Image Builder resources."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, table
from kiln.cli.resource_verbs import ResourceVerbs, in_region

app = typer.Typer()


def _service() -> ModuleType:
    from kiln.services.components import resource

    return resource


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Component name.")],
    semantic_version: Annotated[str, typer.Option("--semantic-version", help="major.minor.patch")],
    platform: Annotated[str, typer.Option("--platform", help="Linux, Windows or macOS.")] = "Linux",
    data_file: Annotated[
        Path | None, typer.Option("--data-file", help="AWSTOE YAML document file.")
    ] = None,
    uri: Annotated[str | None, typer.Option("--uri", help="file://PATH or s3://BUCKET/KEY.")] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", help="S3 endpoint for an s3:// uri (default: AWS_ENDPOINT_URL)."),
    ] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    change_description: Annotated[str | None, typer.Option("--change-description")] = None,
    supported_os_versions: Annotated[
        list[str] | None, typer.Option("--supported-os-version", help="Repeatable.")
    ] = None,
    tags: Annotated[list[str] | None, typer.Option("--tags", help="KEY=VALUE, repeatable.")] = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """Create a component version from a document file or URI; prints its build ARN."""
    from kiln.cli.resource_input import tags as resource_tags
    from kiln.errors import InvalidInput
    from kiln.services.components.resource import create_component

    if (data_file is None) == (uri is None):
        raise InvalidInput("give exactly one of --data-file or --uri", location="options")
    body: dict[str, object] = {"name": name, "semanticVersion": semantic_version, "platform": platform}
    if data_file is not None:
        try:
            body["data"] = data_file.read_text()
        except FileNotFoundError:
            raise InvalidInput(f"{data_file} does not exist", location="--data-file") from None
    else:
        body["uri"] = uri
    optional = {
        "description": description,
        "changeDescription": change_description,
        "supportedOsVersions": supported_os_versions or None,
        "tags": resource_tags(tags),
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    result = create_component(body, base_dir=Path.cwd(), endpoint_url=endpoint_url, account=account,
                              region=in_region(region))
    emit(output, result, result["componentBuildVersionArn"])


@app.command("list")
def list_(
    owner: Annotated[str, typer.Option("--owner", help="Self or Amazon.")] = "Self",
    name: Annotated[str | None, typer.Option("--name", help="Only this name.")] = None,
    by_name: Annotated[bool, typer.Option("--by-name", help="Only the newest version per name.")] = False,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """List component versions (the account's, or with --owner Amazon the managed ones)."""
    from kiln.services.components.resource import list_components

    result = list_components(owner=owner, name=name, by_name=by_name, account=account, region=in_region(region))
    rows = result["componentVersionList"]
    emit(
        output,
        result,
        lambda: table(
            ["ARN", "TYPE", "OWNER", "CREATED"],
            [[row["arn"], row["type"], row["owner"], row["dateCreated"]] for row in rows],
        ),
    )


verbs = ResourceVerbs(app, _service, "componentBuildVersionArn")
verbs.get(
    "get_component",
    "component",
    "Show a component (the newest build matching a wildcard ARN).",
    arn_help="Build ARN, or version ARN with x wildcards.",
)
verbs.delete(
    "delete_component",
    "Delete a component build (refused while a recipe needs it).",
    arn_help="Component build version ARN.",
)
