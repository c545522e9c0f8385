"""``kiln image references``: what uses an AMI among the account's resources in a region (EC2
``DescribeImageReferences``, ``kiln.services.fleet.image_references``)."""

from __future__ import annotations

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, table

app = typer.Typer()


@app.command("references")
def references(
    image_ids: list[str] = typer.Argument(..., help="AMI ids (1-10)."),
    resource_type: list[str] = typer.Option(
        [], "--resource-type",
        help="ec2:Instance, ec2:LaunchTemplate, ssm:Parameter or imagebuilder:ImageRecipe; repeatable "
             "(default: all).",
    ),
    version_depth: int | None = typer.Option(
        None, "--version-depth", help="Launch templates: how many newest versions to look at (default 10)."),
    state_name: list[str] = typer.Option([], "--state-name", help="Instances: only in these states; repeatable."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """List the instances, launch templates, parameters and recipes that use the AMIs."""
    from kiln.services.fleet.image_references import describe_image_references

    types = []
    for kind in resource_type or (["ec2:Instance", "ec2:LaunchTemplate"] if version_depth or state_name else []):
        options = []
        if kind == "ec2:LaunchTemplate" and version_depth is not None:
            options.append({"OptionName": "version-depth", "OptionValues": [str(version_depth)]})
        if kind == "ec2:Instance" and state_name:
            options.append({"OptionName": "state-name", "OptionValues": state_name})
        types.append({"ResourceType": kind, "ResourceTypeOptions": options})
    result = describe_image_references(image_ids, include_all_resource_types=not types,
                                       resource_types=types or None, account=account, region=region)
    found = result["ImageReferences"]
    emit(output, result, lambda: table(["ImageId", "ResourceType", "Arn"],
                                       [(r["ImageId"], r["ResourceType"], r["Arn"]) for r in found]))
