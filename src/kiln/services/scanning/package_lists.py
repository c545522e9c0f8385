"""Installed-package lists as JSON files (what ``kiln vulndb findings|pending --packages-json`` read): a
list of ``InstalledPackage`` objects (``as_json``), or an object holding one under ``packages``."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from kiln.errors import InvalidInput
from kiln.model.packages import InstalledPackage

FIELDS = tuple(f.name for f in fields(InstalledPackage))
_LIST_KEYS = ("packages", "Packages")


def read_packages(path: Path) -> list[InstalledPackage]:
    where = str(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInput("no such file", location=where) from None
    except json.JSONDecodeError as error:
        raise InvalidInput(f"not JSON ({error.msg})", location=f"{where}:{error.lineno}") from None
    if isinstance(document, dict):
        document = next((document[key] for key in _LIST_KEYS if isinstance(document.get(key), list)), None)
    if not isinstance(document, list):
        raise InvalidInput("expected a list of packages (or {\"packages\": [...]})", location=where)
    return [_package(item, f"{where}: packages[{index}]") for index, item in enumerate(document)]


def _package(item: Any, where: str) -> InstalledPackage:
    if not isinstance(item, dict):
        raise InvalidInput("a package is a JSON object", location=where)
    values: dict[str, str] = {}
    for name in FIELDS:
        value = item.get(name, "" if name in ("source_name", "source_version", "purl", "architecture") else None)
        if not isinstance(value, str):
            raise InvalidInput(f"{name}: a string is required", location=where,
                               hint="fields: " + ", ".join(FIELDS))
        values[name] = value
    if not values["name"] or not values["version"]:
        raise InvalidInput("name and version must not be empty", location=where)
    return InstalledPackage(**values)
