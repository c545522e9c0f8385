"""``kiln org create|describe|list-roots|create-ou|list-ous|add-account|move-account|remove-account``:
an organization with the calling account (``--account``) as its management account
(``kiln.services.accounts.organizations``). Moving an account changes what its OU grants let it launch
from the next command on."""

from __future__ import annotations

from typing import Any

import typer

from kiln.cli.options import Account, Output
from kiln.cli.output import emit, table, to_json

app = typer.Typer()

ParentId = typer.Option(None, "--parent-id", help="Root (r-…) or OU (ou-…) id; default: the root.")


def _units_table(rows: list[dict[str, Any]]) -> None:
    table(["Id", "Name", "Arn"], [(row["Id"], row["Name"], row["Arn"]) for row in rows])


def _root(account: str) -> str:
    from kiln.services.accounts import organizations

    return str(organizations.list_roots(account)["Roots"][0]["Id"])


@app.command("create")
def create(account: Account = "", output: Output = "text") -> None:
    """Create an organization managed by the account; prints its ARN."""
    from kiln.services.accounts import organizations

    result = organizations.create_organization(account)
    emit(output, result, result["Organization"]["Arn"])


@app.command("describe")
def describe(account: Account = "", output: Output = "text") -> None:
    """Show the account's organization."""
    from kiln.services.accounts import organizations

    result = organizations.describe_organization(account)
    emit(output, result, to_json(result["Organization"]))


@app.command("list-roots")
def list_roots(account: Account = "", output: Output = "text") -> None:
    """The organization's root."""
    from kiln.services.accounts import organizations

    result = organizations.list_roots(account)
    emit(output, result, lambda: _units_table(result["Roots"]))


@app.command("create-ou")
def create_ou(
    name: str = typer.Argument(..., help="OU name, unique under its parent."),
    parent_id: str = ParentId,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Create an organizational unit (management account only); prints its ARN."""
    from kiln.services.accounts import organizations

    result = organizations.create_organizational_unit(account, parent_id or _root(account), name)
    unit = result["OrganizationalUnit"]
    emit(output, result, f"{unit['Id']} {unit['Arn']}")


@app.command("list-ous")
def list_ous(parent_id: str = ParentId, account: Account = "", output: Output = "text") -> None:
    """The OUs directly under a parent."""
    from kiln.services.accounts import organizations

    result = organizations.list_organizational_units(account, parent_id or _root(account))
    emit(output, result, lambda: _units_table(result["OrganizationalUnits"]))


@app.command("add-account")
def add_account(
    account_id: str = typer.Argument(..., help="Existing account to bring in (under the root)."),
    account: Account = "",
    output: Output = "text",
) -> None:
    """Bring an existing account into the organization (management account only)."""
    from kiln.services.accounts import organizations

    result = organizations.add_account(account, account_id)
    emit(output, {"Account": result}, f"{account_id} joined ({result.get('Arn')})")


@app.command("move-account")
def move_account(
    account_id: str = typer.Argument(..., help="Member account to move."),
    destination_parent_id: str = typer.Option(..., "--destination-parent-id", help="Root or OU id."),
    source_parent_id: str = typer.Option(None, "--source-parent-id", help="Where it is now (checked)."),
    account: Account = "",
    output: Output = "text",
) -> None:
    """Move a member account to another OU or the root; its OU grants follow at once."""
    from kiln.services.accounts import organizations

    organizations.move_account(account, account_id, destination_parent_id, source_parent_id)
    result = {"AccountId": account_id, "DestinationParentId": destination_parent_id}
    emit(output, result, f"{account_id} moved to {destination_parent_id}")


@app.command("remove-account")
def remove_account(
    account_id: str = typer.Argument(..., help="Member account to remove."),
    account: Account = "",
    output: Output = "text",
) -> None:
    """Remove a member account from the organization; its organization and OU grants end at once."""
    from kiln.services.accounts import organizations

    organizations.remove_account(account, account_id)
    emit(output, {"AccountId": account_id, "Removed": True}, f"{account_id} removed")
