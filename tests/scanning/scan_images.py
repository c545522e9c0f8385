"""Images with a handwritten dpkg database and a small OSV advisory set with known answers, for the
image scan tests (CLI, wire, criteria, audit)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.inventory.package_dbs import dpkg_stanza, os_release, write
from tests.scanning.conftest import affected, fixed, osv

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION="12 (bookworm)"\n'
CVSS_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
CVSS_MEDIUM = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"  # 6.1

# libssl3 (source openssl) 3.0.11-1~deb12u1: a CRITICAL fixed in deb12u2 (fix since 2026-10-01);
# glibc: a LOW with no fix yet; bash 5.2.15-2+b2 is a binNMU of source 5.2.15-2, which is the fix.
ADVISORIES = [
    osv("DSA-5000-1", affected("Debian:12", "openssl", *fixed("3.0.11-1~deb12u2")),
        severity=[{"type": "CVSS_V3", "score": CVSS_CRITICAL}], aliases=["CVE-2026-1000"]),
    osv("DEBIAN-CVE-2026-0001", affected("Debian:12", "glibc", {"introduced": "0"},
                                         ecosystem_specific={"urgency": "low"})),
    osv("DSA-5002-1", affected("Debian:12", "bash", *fixed("5.2.15-2")),
        severity=[{"type": "CVSS_V3", "score": CVSS_MEDIUM}]),
]
# Published later: a MEDIUM in tzdata with a fix, which the old image then has.
LATER = osv("DSA-5003-1", affected("Debian:12", "tzdata", *fixed("2024b-0+deb12u1")),
            severity=[{"type": "CVSS_V3", "score": CVSS_MEDIUM}], published="2026-11-15T00:00:00Z")


def debian_root(root: Path) -> Path:
    os_release(root, DEBIAN)
    write(root, "var/lib/dpkg/status", "".join([
        dpkg_stanza("libssl3", "3.0.11-1~deb12u1", source="openssl"),
        dpkg_stanza("libc6", "2.36-9+deb12u4", source="glibc"),
        dpkg_stanza("bash", "5.2.15-2+b2", source="bash (5.2.15-2)"),
        dpkg_stanza("tzdata", "2024a-0+deb12u1", arch="all"),
    ]))
    return root


def import_advisories(directory: Path, records: list[dict[str, Any]], source: str = "debian") -> None:
    from kiln.services.scanning.advisories import import_advisories as load

    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink()
    for record in records:
        (directory / f"{record['id']}.json").write_text(json.dumps(record))
    load(str(directory), source=source)
