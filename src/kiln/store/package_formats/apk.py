"""apk's database ``lib/apk/db/installed``: one stanza of ``K:value`` lines per package.

P name, V version, A architecture, o origin (the source package, built at the same version).
"""

from __future__ import annotations

from kiln.errors import InvalidInput
from kiln.store.package_formats import RawPackage


def _record(fields: dict[str, str], location: str, number: int) -> RawPackage:
    name, version = fields.get("P", ""), fields.get("V", "")
    if not name or not version:
        raise InvalidInput("package stanza without P: or V:", location=f"{location}:{number}")
    origin = fields.get("o") or name
    return RawPackage(name, version, fields.get("A", ""), origin, version, upstream=origin if origin != name else "")


def parse_installed(data: bytes, location: str) -> list[RawPackage]:
    found = []
    fields: dict[str, str] = {}
    start = 0
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            if fields:
                found.append(_record(fields, location, start))
            fields = {}
            continue
        if len(line) < 2 or line[1] != ":":
            raise InvalidInput(f"not a 'K:value' line: {line[:80]!r}", location=f"{location}:{number}")
        if not fields:
            start = number
        # file entries (F:, R:, a:, Z:) repeat; only the package's own fields are kept, first wins
        fields.setdefault(line[0], line[2:])
    if fields:
        found.append(_record(fields, location, start))
    return found
