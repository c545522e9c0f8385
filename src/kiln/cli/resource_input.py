"""Helpers the resource commands share: ``--cli-input-json/--cli-input-yaml`` bodies, ``--tags k=v``,
and rendering of Get*/List* answers. (Not a noun module: ``resource`` is not a CLI noun.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kiln.errors import InvalidInput


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
