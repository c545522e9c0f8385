"""The options every command shares, defined once: ``--region``, ``--account``, ``--output``, request bodies.

Use them as parameter annotations, e.g. ``def list_(region: Region = DEFAULT_REGION, output: Output =
"text")``. (The flags' help texts live here, so every command says the same.)
"""

from __future__ import annotations

from typing import Annotated

import typer

from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION

__all__ = ["DEFAULT_ACCOUNT", "DEFAULT_REGION", "Account", "CliInputJson", "CliInputYaml", "Output", "Region"]

Region = Annotated[str, typer.Option("--region", help="Region (image store) to use.")]


def _caller(value: str) -> str:
    """The account a command acts as: ``--account``, else ``KILN_ACCOUNT``, else the default; it must exist."""
    from kiln.services.accounts.accounts import caller_account

    return caller_account(value or None)


# Resolved while the command line is parsed, so a command always receives an existing account's id
# (declare it ``account: Account = ""``: empty means "not given").
Account = Annotated[
    str,
    typer.Option(
        "--account",
        callback=_caller,
        help=f"Account to act as (default: $KILN_ACCOUNT, else {DEFAULT_ACCOUNT}).",
        show_default=False,
    ),
]
Output = Annotated[
    str,
    typer.Option("--output", help="Output format: text or json.", case_sensitive=False),
]
CliInputJson = Annotated[
    str | None,
    typer.Option("--cli-input-json", help="Request body: JSON text, file://PATH, a path or - for stdin."),
]
CliInputYaml = Annotated[
    str | None,
    typer.Option("--cli-input-yaml", help="Request body as YAML: file://PATH, a path or - for stdin."),
]
