"""dpkg's database: ``var/lib/dpkg/status`` (deb822 stanzas) and distroless ``status.d/<package>`` files.

Only installed packages count (``Status: … installed``); files in ``status.d`` carry no Status field
and each describes an installed package. ``Source: name (version)`` names the source package and,
when it differs, its version; otherwise both are the binary's.
"""

from __future__ import annotations

from collections.abc import Iterator

from kiln.errors import InvalidInput
from kiln.store.package_formats import RawPackage

WANTED = frozenset({"Package", "Version", "Architecture", "Source", "Status"})


def stanzas(text: str, location: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(first line number, the fields we read) of each stanza; continuation lines are skipped."""
    fields: dict[str, str] = {}
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if fields:
                yield start, fields
            fields = {}
            continue
        if line[0] in " \t":
            continue
        if not fields:
            start = number
        key, colon, value = line.partition(":")
        if not colon:
            raise InvalidInput(f"not a 'Field: value' line: {line[:80]!r}", location=f"{location}:{number}")
        if key in WANTED:
            fields[key] = value.strip()
    if fields:
        yield start, fields


def _source(fields: dict[str, str], version: str) -> tuple[str, str]:
    source = fields.get("Source", "")
    if not source:
        return fields["Package"], version
    name, _, rest = source.partition(" ")
    rest = rest.strip()
    if rest.startswith("(") and rest.endswith(")"):
        return name, rest[1:-1].strip()
    return name, version


def parse_status(data: bytes, location: str, *, require_status: bool = True) -> list[RawPackage]:
    """The installed packages of a dpkg status file (``require_status=False`` for ``status.d`` files)."""
    text = data.decode("utf-8", "replace")
    found = []
    for number, fields in stanzas(text, location):
        name = fields.get("Package")
        if not name:
            raise InvalidInput("stanza without a Package field", location=f"{location}:{number}")
        status = fields.get("Status", "")
        if require_status and not status.endswith(" installed"):
            continue
        version = fields.get("Version", "")
        if not version:
            if status.endswith(" installed") or not require_status:
                raise InvalidInput(f"package {name} has no Version", location=f"{location}:{number}")
            continue
        source_name, source_version = _source(fields, version)
        upstream = "" if source_name == name and source_version == version else (
            source_name if source_version == version else f"{source_name}@{source_version}")
        found.append(RawPackage(name, version, fields.get("Architecture", ""), source_name, source_version,
                                upstream=upstream))
    return found
