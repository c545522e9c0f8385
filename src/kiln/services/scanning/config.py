"""``KILN_HOME/vulndb.json``: the advisory sources ``kiln vulndb update`` fetches (name → URL) and the
mirrors security suite indexes come from. Written by ``kiln vulndb source add|remove``; hand-editable.

    {"sources": {"debian": "https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip"},
     "mirrors": {"debian-security": "https://deb.debian.org/debian-security"}}
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

from kiln.errors import InvalidInput, NotFound
from kiln.home import kiln_home

SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DEFAULT_MIRRORS = {
    "debian-security": "https://deb.debian.org/debian-security",
    "ubuntu-security": "http://security.ubuntu.com/ubuntu",
    "ubuntu-ports-security": "http://ports.ubuntu.com/ubuntu-ports",
}


def config_path() -> Path:
    return kiln_home() / "vulndb.json"


def load() -> dict[str, Any]:
    path = config_path()
    if not path.is_file():
        return {"sources": {}, "mirrors": {}}
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InvalidInput(f"not JSON ({error.msg})", location=f"{path}:{error.lineno}") from None
    if not isinstance(config, dict) or not all(isinstance(config.get(k, {}), dict) for k in ("sources", "mirrors")):
        raise InvalidInput('expected {"sources": {NAME: URL}, "mirrors": {NAME: URL}}', location=str(path))
    config.setdefault("sources", {})
    config.setdefault("mirrors", {})
    return config


def _save(config: dict[str, Any]) -> None:
    path = config_path()
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def check_name(name: str, where: str = "NAME") -> str:
    if not SOURCE_NAME.match(name):
        raise InvalidInput(f"{name!r} is not a source name", location=where,
                           hint="letters, digits, '.', '_' and '-', up to 128 characters")
    return name


def check_url(url: str, where: str = "URL") -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInput(f"{url!r} is not an http:// or https:// URL", location=where)
    return url


def add_source(name: str, url: str) -> dict[str, str]:
    config = load()
    config["sources"][check_name(name)] = check_url(url)
    _save(config)
    return {"Name": name, "Url": url}


def remove_source(name: str) -> None:
    config = load()
    if config["sources"].pop(name, None) is None:
        raise NotFound(f"no advisory source {name!r} is configured", hint="kiln vulndb source list")
    _save(config)


def sources() -> dict[str, str]:
    return dict(load()["sources"])


def mirror(name: str) -> str:
    """The base URL of a security archive (``debian-security``, ``ubuntu-security``…)."""
    configured = load()["mirrors"].get(name)
    return str(configured or DEFAULT_MIRRORS[name]).rstrip("/")


def set_mirror(name: str, url: str) -> dict[str, str]:
    if name not in DEFAULT_MIRRORS:
        raise InvalidInput(f"unknown archive {name!r}", location="ARCHIVE", hint=", ".join(DEFAULT_MIRRORS))
    config = load()
    config["mirrors"][name] = check_url(url)
    _save(config)
    return {"Archive": name, "Url": url}
