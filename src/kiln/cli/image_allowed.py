"""``kiln image allowed get|enable|disable|replace-criteria``: EC2 Allowed AMIs of the account in a
region (``kiln.services.ec2.allowed_images``)."""

from __future__ import annotations

import json
from typing import Any

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit

app = typer.Typer(
    no_args_is_help=True,
    help="Allowed images (EC2 Allowed AMIs) of the account in a region: get, enable, disable, replace-criteria.",
)


def _state_text(state: str, region: str, account: str) -> str:
    return f"{state} (account {account}, region {region})"


def _settings_text(result: dict[str, Any], region: str, account: str) -> str:
    lines = [_state_text(result["State"], region, account),
             f"own images judged too: {'yes' if result['Kiln']['IncludeOwnImages'] else 'no'}",
             f"as of: {result['Kiln']['AsOf'].isoformat()}"]
    lines += [f"criterion {index}: {json.dumps(criterion, sort_keys=True)}"
              for index, criterion in enumerate(result["ImageCriteria"], start=1)] or ["no criteria"]
    return "\n".join(lines)


@app.command("get")
def get(region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """Show the state (enabled, audit-mode, disabled) and the image criteria."""
    from kiln.services.ec2 import allowed_images

    result = allowed_images.get_allowed_images_settings(region, account=account)
    emit(output, result, _settings_text(result, region, account))


@app.command("enable")
def enable(
    state: str = typer.Option("enabled", "--state", help="enabled (refuse disallowed AMIs) or audit-mode (record)."),
    include_own_images: bool | None = typer.Option(
        None, "--include-own-images/--exempt-own-images",
        help="kiln's stricter mode: judge the account's own AMIs too (EC2 exempts them; default: unchanged).",
    ),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Turn allowed images on: only AMIs matching a criterion may be launched or put in a template."""
    from kiln.services.ec2 import allowed_images

    result = allowed_images.enable_allowed_images_settings(
        state, region, include_own_images=include_own_images, account=account)
    emit(output, result, _state_text(result["AllowedImagesSettingsState"], region, account))


@app.command("disable")
def disable(region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """Turn allowed images off (the criteria are kept)."""
    from kiln.services.ec2 import allowed_images

    result = allowed_images.disable_allowed_images_settings(region, account=account)
    emit(output, result, _state_text(result["AllowedImagesSettingsState"], region, account))


@app.command("replace-criteria")
def replace_criteria(
    image_criteria: str = typer.Option(
        ..., "--image-criteria",
        help="ImageCriterion list as JSON or YAML: inline, file://PATH, a path, or - for stdin.",
    ),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Replace the whole list of image criteria (an AMI is allowed when it matches any one)."""
    from kiln.cli.resource_input import document
    from kiln.services.ec2 import allowed_images

    result = allowed_images.replace_image_criteria(document(image_criteria, "--image-criteria"), region,
                                                   account=account)
    emit(output, result, "replaced")
