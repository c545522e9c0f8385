"""``kiln launch-template create|create-version|modify|describe|describe-versions|delete|delete-versions``
(``kiln.services.fleet.launch_templates``). TEMPLATE is a launch template id (``lt-…``) or name."""

from __future__ import annotations

from typing import Any

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, table

app = typer.Typer()

Template = typer.Argument(..., help="Launch template id (lt-…) or name.")
DATA_HELP = "LaunchTemplateData as JSON or YAML: inline, file://PATH, a path, or - for stdin."


def _data(value: str) -> dict[str, Any]:
    from kiln.cli.resource_input import document

    return document(value, "--launch-template-data")  # type: ignore[no-any-return]


def _ref(template: str) -> Any:
    from kiln.services.fleet.launch_templates import TemplateRef

    return TemplateRef.parse(template)


def _templates_table(found: list[dict[str, Any]]) -> None:
    table(
        ["LaunchTemplateId", "Name", "Default", "Latest", "Created", "Tags"],
        [(t["LaunchTemplateId"], t["LaunchTemplateName"], t["DefaultVersionNumber"], t["LatestVersionNumber"],
          t["CreateTime"].strftime("%Y-%m-%dT%H:%M:%SZ"),
          ",".join(f"{tag['Key']}={tag['Value']}" for tag in t.get("Tags", []))) for t in found],
    )


def _versions_table(found: list[dict[str, Any]]) -> None:
    table(
        ["LaunchTemplateId", "Name", "Version", "Default", "ImageId", "InstanceType", "Description"],
        [(v["LaunchTemplateId"], v["LaunchTemplateName"], v["VersionNumber"], "yes" if v["DefaultVersion"] else "",
          v["LaunchTemplateData"].get("ImageId"), v["LaunchTemplateData"].get("InstanceType"),
          v.get("VersionDescription")) for v in found],
    )


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Launch template name (unique in the account and region)."),
    launch_template_data: str = typer.Option(..., "--launch-template-data", help=DATA_HELP),
    version_description: str | None = typer.Option(None, "--version-description"),
    tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE tag of the template, repeatable."),
    client_token: str | None = typer.Option(None, "--client-token", help="Idempotency token."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Create a launch template (version 1, its default); prints its id."""
    from kiln.cli.resource_input import key_values
    from kiln.services.fleet import launch_templates

    result = launch_templates.create_launch_template(
        name, _data(launch_template_data), version_description=version_description,
        tags=key_values(tag, "--tag"), client_token=client_token, account=account, region=region,
    )
    emit(output, result, result["LaunchTemplate"]["LaunchTemplateId"])


@app.command("create-version")
def create_version(
    template: str = Template,
    launch_template_data: str = typer.Option(..., "--launch-template-data", help=DATA_HELP),
    source_version: str | None = typer.Option(
        None, "--source-version", help="Start from this version's data (a number, $Default or $Latest)."
    ),
    version_description: str | None = typer.Option(None, "--version-description"),
    resolve_alias: bool = typer.Option(False, "--resolve-alias", help="Show the AMI a resolve:ssm: ImageId names."),
    client_token: str | None = typer.Option(None, "--client-token", help="Idempotency token."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Create a new version (the default stays where it is); prints its number."""
    from kiln.services.fleet import launch_templates

    result = launch_templates.create_launch_template_version(
        _ref(template), _data(launch_template_data), source_version=source_version,
        version_description=version_description, resolve_alias=resolve_alias, client_token=client_token,
        account=account, region=region,
    )
    emit(output, result, str(result["LaunchTemplateVersion"]["VersionNumber"]))


@app.command("modify")
def modify(
    template: str = Template,
    default_version: str = typer.Option(..., "--default-version", help="Version number (or $Latest)."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Set the template's default version; prints it."""
    from kiln.services.fleet import launch_templates

    result = launch_templates.modify_launch_template(
        _ref(template), default_version=default_version, account=account, region=region)
    emit(output, result, str(result["LaunchTemplate"]["DefaultVersionNumber"]))


@app.command("describe")
def describe(
    templates: list[str] = typer.Argument(None, help="Launch template ids or names (default: all)."),
    filter_: list[str] = typer.Option([], "--filter", help="NAME=V1,V2: launch-template-name, tag:KEY, tag-key."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """List launch templates with their default and latest versions."""
    from kiln.cli.resource_input import filters
    from kiln.services.fleet import launch_templates

    given = templates or []
    result = launch_templates.describe_launch_templates(
        launch_template_ids=[t for t in given if t.startswith("lt-")],
        launch_template_names=[t for t in given if not t.startswith("lt-")],
        filters=filters(filter_), account=account, region=region,
    )
    emit(output, result, lambda: _templates_table(result["LaunchTemplates"]))


@app.command("describe-versions")
def describe_versions(
    template: str | None = typer.Argument(None, help="Launch template id or name (default: every template)."),
    versions: list[str] = typer.Option([], "--version", help="A number, $Default or $Latest; repeatable."),
    min_version: int | None = typer.Option(None, "--min-version"),
    max_version: int | None = typer.Option(None, "--max-version"),
    filter_: list[str] = typer.Option(
        [], "--filter", help="NAME=V1,V2: image-id, instance-type, is-default-version."),
    resolve_alias: bool = typer.Option(False, "--resolve-alias", help="Show the AMI a resolve:ssm: ImageId names."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """List launch template versions with their image ids."""
    from kiln.cli.resource_input import filters
    from kiln.services.fleet import launch_templates

    result = launch_templates.describe_launch_template_versions(
        _ref(template) if template else None, versions=versions, min_version=min_version,
        max_version=max_version, filters=filters(filter_), resolve_alias=resolve_alias,
        account=account, region=region,
    )
    emit(output, result, lambda: _versions_table(result["LaunchTemplateVersions"]))


@app.command("delete")
def delete(template: str = Template, region: Region = DEFAULT_REGION, account: Account = "",
           output: Output = "text") -> None:
    """Delete a launch template and every version; prints its id."""
    from kiln.services.fleet import launch_templates

    result = launch_templates.delete_launch_template(_ref(template), account=account, region=region)
    emit(output, result, result["LaunchTemplate"]["LaunchTemplateId"])


@app.command("delete-versions")
def delete_versions(
    template: str = Template,
    versions: list[str] = typer.Argument(..., help="Version numbers."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Delete versions (never the default); exits 1 if any could not be deleted."""
    from kiln.cli.output import progress
    from kiln.services.fleet import launch_templates

    result = launch_templates.delete_launch_template_versions(_ref(template), versions, account=account, region=region)
    deleted = result["SuccessfullyDeletedLaunchTemplateVersions"]
    emit(output, result, "\n".join(str(v["VersionNumber"]) for v in deleted))
    failed = result["UnsuccessfullyDeletedLaunchTemplateVersions"]
    for item in failed:
        progress(f"error: {item['ResponseError']['Code']}: {item['ResponseError']['Message']}")
    if failed:
        raise typer.Exit(1)
