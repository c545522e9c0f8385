"""What commands read from their command line besides plain options: the request body
(``--cli-input-json/--cli-input-yaml``), ``KEY=VALUE`` pairs, times and ages. One reader each."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kiln.errors import InvalidInput


def _read(value: str, option: str, *, inline: bool) -> tuple[str, str]:
    """The text behind an option value and where it came from: ``-`` (stdin), ``file://PATH``, a
    path, or (``inline``) the text itself."""
    if value == "-":
        return sys.stdin.read(), "<stdin>"
    path = value.removeprefix("file://")
    if not value.startswith("file://") and inline and not _names_a_file(path):
        return value, option
    try:
        return Path(path).read_text(), path
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}", location=option) from None


def _names_a_file(value: str) -> bool:
    """An existing file, or something that can only be meant as a path (not a JSON/YAML body)."""
    if len(value) >= 4096 or "\n" in value:
        return False
    if Path(value).is_file():
        return True
    return not value.lstrip().startswith(("{", "[")) and ": " not in value


def cli_input(json_input: str | None, yaml_input: str | None) -> dict[str, Any]:
    """The request body from ``--cli-input-json`` or ``--cli-input-yaml`` (exactly one): a path,
    ``file://PATH``, ``-`` for stdin, or the body itself. A ``kind`` key (as ``kiln apply`` files
    have) is dropped."""
    import yaml

    if (json_input is None) == (yaml_input is None):
        raise InvalidInput("give exactly one of --cli-input-yaml or --cli-input-json", location="options")
    if json_input is not None:
        text, where = _read(json_input, "--cli-input-json", inline=True)
        try:
            body = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidInput(f"not valid JSON: {error.msg} (line {error.lineno})", location=where) from None
    else:
        text, where = _read(yaml_input or "", "--cli-input-yaml", inline=True)
        try:
            body = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise InvalidInput(f"not valid YAML: {error}", location=where) from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be an object", location=where)
    body.pop("kind", None)
    return body


def split_pair(item: str, option: str, form: str = "KEY=VALUE") -> tuple[str, str]:
    """``KEY=VALUE`` (the value may be empty, the key may not)."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise InvalidInput(f"{item!r} is not {form}", location=option)
    return key, value


def key_values(items: Iterable[str] | None, option: str, *, commas: bool = False) -> dict[str, str]:
    """Repeated ``KEY=VALUE`` options as a dict; with ``commas`` each may also hold
    ``K1=V1,K2=V2`` (keys and values then stripped)."""
    pairs: dict[str, str] = {}
    for item in items or ():
        for part in item.split(",") if commas else [item]:
            key, value = split_pair(part, option)
            if commas:
                key, value = key.strip(), value.strip()
            pairs[key] = value
    return pairs


def tags(items: Iterable[str] | None, option: str = "--tags") -> dict[str, str] | None:
    """Image Builder ``--tags K=V[,K=V]`` (repeatable); None when none are given."""
    return key_values(items, option, commas=True) or None


def filters(items: Iterable[str] | None, option: str = "--filter") -> dict[str, list[str]]:
    """EC2 filters, ``NAME=V1,V2`` (repeatable; values of a repeated name add up)."""
    found: dict[str, list[str]] = {}
    for item in items or ():
        name, values = split_pair(item, option, "NAME=V1,V2")
        found.setdefault(name, []).extend(values.split(","))
    return found


def launch_permissions(items: Iterable[str] | None, option: str) -> list[dict[str, str]]:
    """``KIND=VALUE`` launch permission entries (``Group=all``, ``UserId=123456789012``, ...)."""
    return [dict([split_pair(item, option, "KIND=VALUE, e.g. Group=all")]) for item in items or ()]


def parse_time(value: str | None, option: str = "--as-of") -> datetime:
    """An ISO 8601 time (``Z`` allowed; UTC when it names no zone); None: now, by kiln's one clock
    (``KILN_CLOCK`` moves it)."""
    if value is None:
        from kiln.services.common import clock

        return clock.now()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{value!r} is not an ISO 8601 time", location=option) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_age(text: str, option: str = "--older-than") -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``: an age."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not number.isdigit():
        raise InvalidInput(f"{text!r} is not an age", location=option, hint="e.g. 30d, 12h, 90m, 2w")
    return timedelta(**{units[unit]: int(number)})


def document(value: str, option: str) -> Any:
    """A JSON or YAML value given inline, as ``file://PATH``, a path, or ``-`` for stdin (what the AWS
    CLI takes for structured options such as ``--launch-template-data``)."""
    import yaml

    text, where = _read(value, option, inline=True)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidInput(f"neither JSON nor YAML: {error}", location=where) from None
