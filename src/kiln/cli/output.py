"""Rendering shared by every command: ``--output json``, tables, YAML, progress, sizes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

import typer

from kiln.cli.options import Output

# The name ``component_document`` and ``top_demo`` import; new code uses ``kiln.cli.options.Output``.
OutputFormat = Output


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_default, sort_keys=False)


def check_format(output: str) -> str:
    output = output.lower()
    if output not in ("text", "json"):
        raise typer.BadParameter(f"--output must be text or json, not {output!r}")
    return output


def emit(output: str, data: Any, text: Callable[[], None] | str | None = None) -> None:
    """Print ``data`` as JSON when asked, otherwise run the text renderer (or print the string)."""
    if check_format(output) == "json":
        sys.stdout.write(to_json(data) + "\n")
    elif callable(text):
        text()
    elif text is not None:
        sys.stdout.write(text + "\n")
    else:
        sys.stdout.write(to_json(data) + "\n")


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Every listing's table: plain aligned columns, as wide as their longest cell.

    Nothing is ever cut or wrapped, whatever the terminal width and also when stdout is not a
    terminal, because ids, ARNs and names are what users copy from it.
    """
    cells = [list(columns), *[["" if cell is None else str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[index]) for row in cells) for index in range(len(columns))]
    for row in cells:
        sys.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def permissions_text(permissions: Iterable[dict[str, str]]) -> str:
    """Launch or create-volume permissions one ``KIND=VALUE`` a line; ``(private)`` when there are none."""
    return "\n".join(f"{kind}={value}" for entry in permissions for kind, value in entry.items()) or "(private)"


def print_yaml(data: Any) -> None:
    import yaml

    sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True))


def progress(message: str) -> None:
    """Progress lines go to stderr so stdout stays machine-readable."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
