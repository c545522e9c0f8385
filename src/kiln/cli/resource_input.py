"""Helpers the resource commands share: ``--cli-input-json/--cli-input-yaml`` bodies, ``--tags k=v``,
rendering of Get*/List* answers, and the create/update/get/delete verbs every resource family has.
(Not a noun module: ``resource`` is not a CLI noun.)"""

# No ``from __future__ import annotations``: the verb functions below carry their help texts in
# ``Annotated`` metadata taken from the enclosing scope, which Typer could not resolve from strings.

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer

from kiln.cli.output import OutputFormat, emit
from kiln.errors import InvalidInput

JSON_HELP = "Request body: JSON text, file://PATH, a path or - for stdin."
YAML_HELP = "Request body as YAML: file://PATH, a path or - for stdin."


def _read(value: str, option: str) -> tuple[str, str]:
    """The text behind an option value: ``file://PATH``, ``-`` (stdin), a path, or the text itself."""
    if value == "-":
        return sys.stdin.read(), "<stdin>"
    path = value.removeprefix("file://")
    candidate = Path(path)
    if value.startswith("file://") or (len(path) < 4096 and "\n" not in path and candidate.is_file()):
        try:
            return candidate.read_text(), str(candidate)
        except FileNotFoundError:
            raise InvalidInput(f"{candidate} does not exist", location=option) from None
    return value, option


def cli_input(json_input: str | None, yaml_input: str | None) -> dict[str, Any]:
    """The request body from ``--cli-input-json`` or ``--cli-input-yaml`` (exactly one)."""
    import yaml

    if (json_input is None) == (yaml_input is None):
        raise InvalidInput("give exactly one of --cli-input-json or --cli-input-yaml", location="options")
    if json_input is not None:
        text, where = _read(json_input, "--cli-input-json")
        try:
            body = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidInput(f"not valid JSON: {error.msg} (line {error.lineno})", location=where) from None
    else:
        text, where = _read(yaml_input or "", "--cli-input-yaml")
        try:
            body = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise InvalidInput(f"not valid YAML: {error}", location=where) from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be an object", location=where)
    body.pop("kind", None)  # the same files `kiln apply` reads
    return body


def parse_tags(values: list[str] | None, option: str = "--tags") -> dict[str, str] | None:
    if not values:
        return None
    tags: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            key, sep, tag = item.partition("=")
            if not sep or not key:
                raise InvalidInput(f"{item!r} is not KEY=VALUE", location=option)
            tags[key.strip()] = tag.strip()
    return tags


def print_yaml(data: Any) -> None:
    import yaml

    sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True))


def print_rows(columns: list[str], rows: list[list[Any]]) -> None:
    """Plain aligned columns that never truncate an ARN (Rich tables clip to the terminal width)."""
    cells = [columns, *[["" if cell is None else str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[index]) for row in cells) for index in range(len(columns))]
    for row in cells:
        sys.stdout.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        )


@dataclass(frozen=True)
class ResourceVerbs:
    """The common verbs of one resource family, over functions of its service module.

    ``service`` returns the family's service module; it is called when a command runs (not at
    registration, so ``kiln --help`` imports no service), ``arn_key`` names the ARN in
    Create/Update/Delete answers, ``arn_help`` is the help of the ARN argument.
    """

    app: typer.Typer
    service: Callable[[], ModuleType]
    arn_key: str
    arn_help: str = "ARN."
    json_help: str = JSON_HELP
    yaml_help: str = YAML_HELP

    def call(self, function: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return getattr(self.service(), function)(*args, **kwargs)

    def body_command(self, verb: str, function: str, doc: str) -> None:
        """A verb that sends a ``--cli-input-json/--cli-input-yaml`` body and prints the ARN (create, update)."""
        json_help, yaml_help = self.json_help, self.yaml_help

        def command(
            cli_input_json: Annotated[str | None, typer.Option("--cli-input-json", help=json_help)] = None,
            cli_input_yaml: Annotated[str | None, typer.Option("--cli-input-yaml", help=yaml_help)] = None,
            output: OutputFormat = "text",
        ) -> None:
            result = self.call(function, cli_input(cli_input_json, cli_input_yaml))
            emit(output, result, result[self.arn_key])

        self.app.command(verb, help=doc)(command)

    def get(self, function: str, shape_key: str, doc: str, arn_help: str | None = None) -> None:
        """``get ARN``: the Get answer, its ``shape_key`` part as YAML."""
        arn_help = arn_help or self.arn_help

        def get(arn: Annotated[str, typer.Argument(help=arn_help)], output: OutputFormat = "text") -> None:
            result = self.call(function, arn)
            emit(output, result, lambda: print_yaml(result[shape_key]))

        self.app.command("get", help=doc)(get)

    def delete(self, function: str, doc: str, arn_help: str | None = None) -> None:
        """``delete ARN``: prints ``deleted ARN``."""
        arn_help = arn_help or self.arn_help

        def delete(arn: Annotated[str, typer.Argument(help=arn_help)], output: OutputFormat = "text") -> None:
            result = self.call(function, arn)
            emit(output, result, f"deleted {result[self.arn_key]}")

        self.app.command("delete", help=doc)(delete)

    def list_by_name(
        self, function: str, list_key: str, columns: list[str], row: Callable[[dict[str, Any]], list[Any]], doc: str
    ) -> None:
        """``list [--name NAME]``: the List answer's ``list_key`` entries as aligned columns."""

        def list_(
            name: Annotated[str | None, typer.Option("--name")] = None, output: OutputFormat = "text"
        ) -> None:
            result = self.call(function, name=name)
            rows = result[list_key]
            emit(output, result, lambda: print_rows(columns, [row(entry) for entry in rows]))

        self.app.command("list", help=doc)(list_)


def register_configuration_verbs(app: typer.Typer, noun: str, service: Callable[[], ModuleType]) -> None:
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
