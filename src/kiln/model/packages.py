"""One installed package as an image's inventory records it: what SBOMs, findings and patch status read."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class InstalledPackage:
    """A package found in an image's package database (dpkg, RPM or apk), read without running the image.

    ``ecosystem`` is OSV's ecosystem name with the release (``Debian:12``, ``Ubuntu:22.04``,
    ``Alpine:v3.19``, ``Rocky Linux:9``…) or ``""`` when the OS release is unknown. Debian and Ubuntu
    advisories are keyed by ``source_name``; for other formats the source fields repeat the binary ones
    when the database names no source.
    """

    name: str
    version: str
    architecture: str
    source_name: str
    source_version: str
    ecosystem: str
    purl: str

    def as_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items()}
