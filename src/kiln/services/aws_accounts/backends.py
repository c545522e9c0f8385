"""Configured backends: ``$KILN_HOME/backends.yaml`` names the regions (optionally of one account) that
the management commands (``lifecycle preview|run``, ``snapshot list --orphaned``, ``compliance
audit|remediate``) reach on AWS without ``--backend aws``, and how::

    backends:
      - region: us-east-1
        account: "123456789012"   # optional: only when the command names this account
        backend: aws              # aws or local
        profile: prod             # optional
        endpointUrl: https://…    # optional

The first entry matching the command's region (and account, when the entry names one) decides; an
explicit ``--backend`` always wins. No file: everything is local, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kiln.errors import InvalidInput
from kiln.home import kiln_home

FILE = "backends.yaml"
BACKENDS = ("local", "aws")
_KEYS = {"region", "account", "backend", "profile", "endpointUrl"}


@dataclass(frozen=True)
class Configured:
    backend: str
    profile: str | None = None
    endpoint_url: str | None = None


def _entries() -> list[dict[str, Any]]:
    import yaml

    path = kiln_home() / FILE
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return []
    except yaml.YAMLError as error:
        raise InvalidInput(f"not valid YAML: {error}", location=str(path)) from None
    entries = data.get("backends") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InvalidInput("must hold a list under 'backends'", location=str(path))
    for index, entry in enumerate(entries):
        where = f"{path}: backends[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("region"), str):
            raise InvalidInput("each backend is a mapping with a region", location=where)
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise InvalidInput(f"unknown key {unknown[0]!r}; use {', '.join(sorted(_KEYS))}",
                               location=f"{where}.{unknown[0]}")
        if entry.get("backend") not in BACKENDS:
            raise InvalidInput(f"backend must be local or aws, not {entry.get('backend')!r}",
                               location=f"{where}.backend")
        for key in ("account", "profile", "endpointUrl"):
            if key in entry and not isinstance(entry[key], str):
                raise InvalidInput(f"{key} must be a string (quote an account id)", location=f"{where}.{key}")
    return entries


def configured(region: str | None, account: str | None) -> Configured | None:
    """The backend configured for ``region`` (and ``account``), if any."""
    if not region:
        return None
    for entry in _entries():
        if entry["region"] == region and entry.get("account") in (None, account):
            return Configured(entry["backend"], entry.get("profile"), entry.get("endpointUrl"))
    return None
