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


def database_url() -> str:
    return os.environ.get("KILN_DATABASE_URL") or f"sqlite:///{kiln_home() / 'kiln.db'}"
