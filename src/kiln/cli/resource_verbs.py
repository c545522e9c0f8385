"""The create/update/get/delete/list verbs every Image Builder resource family has, made once.

(Not a noun module: ``resource`` is not a CLI noun.)
"""

# No ``from __future__ import annotations``: the verb functions below are made inside methods, and
# Typer reads their annotations (e.g. the ARN argument's help) from the function objects.

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Any

import typer

from kiln.cli.options import DEFAULT_REGION, Account, CliInputJson, CliInputYaml, Output, Region
from kiln.cli.output import emit, print_yaml, table
from kiln.cli.resource_input import cli_input


def in_region(region: str) -> str:
    """``--region`` if that region exists, else one clear error naming it."""
    from kiln.services.accounts.regions import require_region

    return require_region(region)


@dataclass(frozen=True)
class ResourceVerbs:
    """The common verbs of one resource family, added to ``app`` over functions of its service module.

    ``service`` returns the family's service module; it is called when a command runs (not when the
    command is made, so ``kiln --help`` imports no service), ``arn_key`` names the ARN in
    Create/Update/Delete answers, ``arn_help`` is the help of the ARN argument.

    Every verb takes ``--account`` and ``--region``: create makes the resource there (``account=``,
    ``region=``), list lists the account's there (``account=``, ``region=``), and update/get/delete act
    as that account (``caller=``: another account's ARN is not found; ``region=``: where a short form
    such as ``image-recipe/NAME/1.0.0`` points).
    """

    app: typer.Typer
    service: Callable[[], ModuleType]
    arn_key: str
    arn_help: str = "ARN."

    def call(self, function: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return getattr(self.service(), function)(*args, **kwargs)

    def body_command(self, verb: str, function: str, doc: str) -> None:
        """A verb that sends a ``--cli-input-json/--cli-input-yaml`` body and prints the ARN (create, update)."""

        def command(
            cli_input_json: CliInputJson = None,
            cli_input_yaml: CliInputYaml = None,
            account: Account = "",
            region: Region = DEFAULT_REGION,
            output: Output = "text",
        ) -> None:
            body = cli_input(cli_input_json, cli_input_yaml)
            where = in_region(region)
            scope = {"account": account} if verb == "create" else {"caller": account}
            result = self.call(function, body, **scope, region=where)
            emit(output, result, result[self.arn_key])

        self.app.command(verb, help=doc)(command)

    def get(self, function: str, shape_key: str, doc: str, arn_help: str | None = None) -> None:
        """``get ARN``: the Get answer, its ``shape_key`` part as YAML."""
        arn_help = arn_help or self.arn_help

        def get(
            arn: Annotated[str, typer.Argument(help=arn_help)],
            account: Account = "",
            region: Region = DEFAULT_REGION,
            output: Output = "text",
        ) -> None:
            result = self.call(function, arn, caller=account, region=in_region(region))
            emit(output, result, lambda: print_yaml(result[shape_key]))

        self.app.command("get", help=doc)(get)

    def delete(self, function: str, doc: str, arn_help: str | None = None) -> None:
        """``delete ARN``: prints ``deleted ARN``."""
        arn_help = arn_help or self.arn_help

        def delete(
            arn: Annotated[str, typer.Argument(help=arn_help)],
            account: Account = "",
            region: Region = DEFAULT_REGION,
            output: Output = "text",
        ) -> None:
            result = self.call(function, arn, caller=account, region=in_region(region))
            emit(output, result, f"deleted {result[self.arn_key]}")

        self.app.command("delete", help=doc)(delete)

    def list_by_name(
        self, function: str, list_key: str, columns: list[str], row: Callable[[dict[str, Any]], list[Any]], doc: str
    ) -> None:
        """``list [--name NAME]``: the List answer's ``list_key`` entries as a table."""

        def list_(
            name: Annotated[str | None, typer.Option("--name")] = None,
            account: Account = "",
            region: Region = DEFAULT_REGION,
            output: Output = "text",
        ) -> None:
            result = self.call(function, name=name, account=account, region=in_region(region))
            rows = result[list_key]
            emit(output, result, lambda: table(columns, [row(entry) for entry in rows]))

        self.app.command("list", help=doc)(list_)


def configuration_verbs(app: typer.Typer, noun: str, service: Callable[[], ModuleType]) -> None:
    """create/update/list/get/delete of ``kiln NOUN``, a configuration family (infrastructure,
    distribution) whose service module names its calls ``<verb>_NOUN_configuration(s)``."""
    key = f"{noun}Configuration"
    verbs = ResourceVerbs(app, service, f"{key}Arn")
    verbs.body_command("create", f"create_{noun}_configuration", f"Create an {noun} configuration; prints its ARN.")
    verbs.body_command(
        "update",
        f"update_{noun}_configuration",
        f"Replace an {noun} configuration's settings (body names {key}Arn).",
    )
    verbs.list_by_name(
        f"list_{noun}_configurations",
        f"{key}SummaryList",
        ["ARN", "CREATED", "UPDATED"],
        lambda r: [r["arn"], r["dateCreated"], r.get("dateUpdated")],
        f"List {noun} configurations.",
    )
    verbs.get(f"get_{noun}_configuration", key, f"Show an {noun} configuration.")
    verbs.delete(f"delete_{noun}_configuration", f"Delete an {noun} configuration (refused while a pipeline uses it).")
