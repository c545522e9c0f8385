"""Where kiln keeps its state: ``KILN_HOME`` (default /var/lib/kiln as root, else ~/.local/share/kiln)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_REGION = "local"
DEFAULT_ACCOUNT = "123456789012"


def kiln_home() -> Path:
    configured = os.environ.get("KILN_HOME")
    if configured:
        home = Path(configured)
    elif os.geteuid() == 0:
        home = Path("/var/lib/kiln")
    else:
        home = Path.home() / ".local" / "share" / "kiln"
    home.mkdir(parents=True, exist_ok=True)
    return home


def region_dir(region: str = DEFAULT_REGION) -> Path:
    return kiln_home() / "regions" / region


def instances_dir() -> Path:
    return kiln_home() / "instances"


def logs_dir() -> Path:
    return kiln_home() / "logs"


def s3_dir() -> Path:
    """Where a distribution's ``s3ExportConfiguration`` writes disk images: ``s3/<bucket>/<prefix>/``."""
    return kiln_home() / "s3"


def cache_dir() -> Path:
    return kiln_home() / "cache"


_urls: dict[tuple[str | None, ...], str] = {}


def database_url() -> str:
    """The database's URL, worked out once per setting of ``KILN_DATABASE_URL`` / ``KILN_HOME`` in this
    process: every call to the store asks for it, and making KILN_HOME (a stat and a mkdir) each time
    was a measurable part of a cheap API read."""
    configured, home = os.environ.get("KILN_DATABASE_URL"), os.environ.get("KILN_HOME")
    key = (configured, home, None if home else os.environ.get("HOME"))
    url = _urls.get(key)
    if url is None:
        url = configured or f"sqlite:///{kiln_home() / 'kiln.db'}"
        if len(_urls) >= 64:  # tests set many homes in turn
            _urls.clear()
        _urls[key] = url
    return url
