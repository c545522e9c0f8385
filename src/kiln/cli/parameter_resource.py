"""``kiln parameter put|get|list|history|label|unlabel|delete``: SSM Parameter Store per account and
region (``kiln.services.parameters``)."""

from __future__ import annotations

from typing import Any

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, table

app = typer.Typer()

Name = typer.Argument(..., help="Parameter name, e.g. /golden/web/latest.")


def _when(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


@app.command("put")
def put(
    name: str = Name,
    value: str = typer.Argument(..., help="Value (for --data-type aws:ec2:image, an AMI id)."),
    parameter_type: str | None = typer.Option(
        None, "--type", help="String or StringList (a new parameter: String; an overwrite: unchanged)."
    ),
    data_type: str | None = typer.Option(
        None, "--data-type", help="text or aws:ec2:image (an AMI this account may use in the region)."
    ),
    description: str | None = typer.Option(None, "--description"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write a new version of an existing parameter."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Create a parameter or (with --overwrite) a new version of one; prints the version."""
    from kiln.services.parameters import parameter_store

    version = parameter_store.put_parameter(
        name, value, parameter_type=parameter_type, data_type=data_type, description=description,
        overwrite=overwrite, account=account, region=region,
    )
    emit(output, {"Version": version, "Tier": parameter_store.TIER}, str(version))


@app.command("get")
def get(
    selector: str = typer.Argument(..., help="NAME, NAME:VERSION or NAME:LABEL."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Print a parameter's value: the latest version, or the version or label selected."""
    from kiln.services.parameters import parameter_store

    found = parameter_store.get_parameter(selector, account=account, region=region)
    emit(output, {"Parameter": found}, found["Value"])


@app.command("list")
def list_(
    path: str | None = typer.Option(None, "--path", help="Only parameters under this path, e.g. /golden."),
    recursive: bool = typer.Option(True, "--recursive/--no-recursive", help="With --path: all levels below it."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """List the account's parameters in the region, with their latest values."""
    from kiln.services.parameters import parameter_store

    found = parameter_store.describe_parameters(path=path, recursive=recursive, account=account, region=region)
    emit(
        output,
        {"Parameters": found},
        lambda: table(
            ["Name", "Type", "DataType", "Version", "LastModified", "Value"],
            [(p["Name"], p["Type"], p["DataType"], p["Version"], _when(p["LastModifiedDate"]), p["Value"])
             for p in found],
        ),
    )


@app.command("history")
def history(name: str = Name, region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """Every kept version of a parameter, oldest first, with its labels."""
    from kiln.services.parameters import parameter_store

    found = parameter_store.get_parameter_history(name, account=account, region=region)
    emit(
        output,
        {"Parameters": found},
        lambda: table(
            ["Version", "Value", "Labels", "DataType", "LastModified", "Description"],
            [(p["Version"], p["Value"], ",".join(p["Labels"]), p["DataType"], _when(p["LastModifiedDate"]),
              p.get("Description")) for p in found],
        ),
    )


def _check_labels(labels: list[str]) -> None:
    """Refuse the whole request for one bad label (SSM would apply the others and list it apart)."""
    from kiln.errors import InvalidInput
    from kiln.services.parameters.names import label_problem

    for label in labels:
        problem = label_problem(label)
        if problem:
            raise InvalidInput(f"{label!r}: {problem}", location="LABEL")


@app.command("label")
def label(
    name: str = Name,
    labels: list[str] = typer.Argument(..., help="Labels (1-10); each moves here from any other version."),
    version: int | None = typer.Option(None, "--version", help="Version to label (default: the latest)."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Label a version of a parameter (get it back with NAME:LABEL); prints the version."""
    from kiln.services.parameters import parameter_store

    _check_labels(labels)
    result = parameter_store.label_parameter_version(name, labels, version=version, account=account, region=region)
    emit(output, result, str(result["ParameterVersion"]))


@app.command("unlabel")
def unlabel(
    name: str = Name,
    version: int = typer.Argument(..., help="Version that carries the labels."),
    labels: list[str] = typer.Argument(..., help="Labels to remove."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Remove labels from a version of a parameter."""
    from kiln.errors import InvalidInput
    from kiln.services.parameters import parameter_store

    result = parameter_store.unlabel_parameter_version(name, version, labels, account=account, region=region)
    if result["InvalidLabels"] and not result["RemovedLabels"]:
        raise InvalidInput(f"version {version} of {name} has none of the labels {', '.join(labels)}", location="LABEL")
    emit(output, result, "\n".join(result["RemovedLabels"]))


@app.command("delete")
def delete(name: str = Name, region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """Delete a parameter with every version and label."""
    from kiln.services.parameters import parameter_store

    parameter_store.delete_parameter(name, account=account, region=region)
    emit(output, {"Name": name, "Deleted": True}, name)
