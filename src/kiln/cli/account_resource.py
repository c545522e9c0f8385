"""``kiln account create|list|get`` and ``kiln account keys create|list|delete``
(``kiln.services.accounts.accounts``)."""

from __future__ import annotations

from typing import Any

import typer

from kiln.cli.options import Account, Output
from kiln.cli.output import emit, table, to_json

app = typer.Typer()
keys = typer.Typer(no_args_is_help=True, help="Access keys of the account (--account): create, list, delete.")


def _accounts_table(accounts: list[dict[str, Any]]) -> None:
    table(
        ["Id", "Name", "Email", "Alias", "Arn", "Joined"],
        [
            (a["Id"], a["Name"], a.get("Email"), a.get("ImageOwnerAlias"), a.get("Arn"), a.get("JoinedMethod"))
            for a in accounts
        ],
    )


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Account name (1-50 characters)."),
    account_id: str = typer.Option(None, "--account-id", help="12-digit id (default: random)."),
    email: str = typer.Option(None, "--email"),
    image_owner_alias: str = typer.Option(
        None, "--image-owner-alias", help="amazon, aws-marketplace or aws-backup-vault: a managed publisher."
    ),
    output: Output = "text",
) -> None:
    """Create an account; prints its id."""
    from kiln.services.accounts import accounts

    result = accounts.create_account(name, account_id=account_id, email=email, image_owner_alias=image_owner_alias)
    emit(output, {"Account": result}, result["Id"])


@app.command("list")
def list_(output: Output = "text") -> None:
    """List the accounts."""
    from kiln.services.accounts import accounts

    found = accounts.list_accounts()
    emit(output, {"Accounts": found}, lambda: _accounts_table(found))


@app.command("get")
def get(account_id: str = typer.Argument(..., help="12-digit account id."), output: Output = "text") -> None:
    """Show one account."""
    from kiln.services.accounts import accounts

    result = accounts.get_account(account_id)
    emit(output, {"Account": result}, to_json(result))


@keys.command("create")
def keys_create(account: Account = "", output: Output = "text") -> None:
    """Create an access key; its secret is printed now and never again."""
    from kiln.services.accounts import accounts

    key = accounts.create_access_key(account)
    emit(
        output,
        {"AccessKey": key},
        f"AccessKeyId: {key['AccessKeyId']}\nSecretAccessKey: {key['SecretAccessKey']}\n"
        "(the secret is shown only now; keep it)",
    )


@keys.command("list")
def keys_list(account: Account = "", output: Output = "text") -> None:
    """List the account's access keys (never their secrets)."""
    from kiln.services.accounts import accounts

    found = accounts.list_access_keys(account)
    emit(
        output,
        {"AccessKeyMetadata": found},
        lambda: table(
            ["AccessKeyId", "Status", "Created"], [(k["AccessKeyId"], k["Status"], k["CreateDate"]) for k in found]
        ),
    )


@keys.command("delete")
def keys_delete(
    access_key_id: str = typer.Argument(..., help="AKIA… key id."), account: Account = "", output: Output = "text"
) -> None:
    """Delete one of the account's access keys."""
    from kiln.services.accounts import accounts

    accounts.delete_access_key(access_key_id, account)
    emit(output, {"AccessKeyId": access_key_id, "Deleted": True}, f"deleted {access_key_id}")
