"""Parsers of the package databases an image carries (dpkg, RPM, apk), one module each.

Each takes the database's bytes and answers ``RawPackage`` records; ``kiln.store.package_db`` finds
the databases in an image's layers and turns the records into ``InstalledPackage`` (ecosystem, purl).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RawPackage:
    """One package as its database states it. ``version`` is the full version the ecosystem compares
    (dpkg ``[epoch:]upstream-revision``, RPM ``[epoch:]version-release``, apk ``version-rN``)."""

    name: str
    version: str
    architecture: str
    source_name: str
    source_version: str
    epoch: str = ""  # RPM only: the purl carries it as a qualifier
    upstream: str = ""  # the purl's ``upstream`` qualifier, when the database names a source
