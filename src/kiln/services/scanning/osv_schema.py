"""The OSV schema's checks, written from the OSV specification (https://ossf.github.io/osv-schema/), in
one place: the record's shape (JSON Schema, checked with ``jsonschema`` whenever the hand-written fast
check ``osv_shape.conforms`` does not vouch for the record, so jsonschema's words name what is wrong),
then what a schema cannot say —
the ecosystem is one the specification defines, and versions kiln can order parse in that order.

``check_record(record, where)`` raises one InvalidInput naming the file, the record id and the field.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from kiln.errors import InvalidInput
from kiln.services.scanning.osv_shape import ID_PATTERN, TIMESTAMP_PATTERN, conforms
from kiln.services.scanning.versions import DPKG, order_of, version_key

# The ecosystems the specification defines (its "Defined ecosystems" table); a ``:suffix`` may follow.
ECOSYSTEMS = frozenset({
    "AlmaLinux", "Alpaquita", "Alpine", "Android", "Azure Linux", "BellSoft Hardened Containers",
    "Bioconductor", "Bitnami", "Chainguard", "CleanStart", "ConanCenter", "CRAN", "crates.io", "Debian",
    "Docker Hardened Images", "Echo", "FreeBSD", "GHC", "GitHub Actions", "Go", "Hackage", "Hex", "Julia",
    "Kubernetes", "Linux", "Mageia", "Maven", "MinimOS", "npm", "NuGet", "opam", "openEuler", "openSUSE",
    "OSS-Fuzz", "Packagist", "Photon OS", "Pub", "PyPI", "Red Hat", "Rocky Linux", "Root", "RubyGems", "SUSE",
    "SwiftURL", "TuxCare", "Ubuntu", "VSCode", "Wolfi",
})

_TIMESTAMP = TIMESTAMP_PATTERN
_SEVERITY = {
    "type": ["array", "null"],
    "items": {
        "type": "object",
        "required": ["type", "score"],
        "properties": {
            "type": {"enum": ["CVSS_V2", "CVSS_V3", "CVSS_V4", "Ubuntu"]},
            "score": {"type": "string", "minLength": 1},
        },
    },
}
_EVENT = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,  # "Only a single type … is allowed in each event object"
    "properties": {name: {"type": "string", "minLength": 1}
                   for name in ("introduced", "fixed", "last_affected", "limit")},
    "additionalProperties": False,
}
_RANGE = {
    "type": "object",
    "required": ["type", "events"],
    "properties": {
        "type": {"enum": ["GIT", "SEMVER", "ECOSYSTEM"]},
        "repo": {"type": "string"},
        "events": {"type": "array", "minItems": 1, "items": _EVENT},
        "database_specific": {"type": "object"},
    },
}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "modified"],
    "properties": {
        "schema_version": {"type": "string"},
        "id": {"type": "string", "pattern": ID_PATTERN},
        "modified": {"type": "string", "pattern": _TIMESTAMP},
        "published": {"type": "string", "pattern": _TIMESTAMP},
        "withdrawn": {"type": "string", "pattern": _TIMESTAMP},
        "aliases": {"type": ["array", "null"], "items": {"type": "string"}},
        "upstream": {"type": "array", "items": {"type": "string"}},
        "related": {"type": "array", "items": {"type": "string"}},
        "summary": {"type": "string"},
        "details": {"type": "string"},
        "severity": _SEVERITY,
        "affected": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "properties": {
                    "package": {
                        "type": "object",
                        "required": ["ecosystem", "name"],
                        "properties": {"ecosystem": {"type": "string", "minLength": 1},
                                       "name": {"type": "string", "minLength": 1},
                                       "purl": {"type": "string"}},
                    },
                    "severity": _SEVERITY,
                    "ranges": {"type": "array", "items": _RANGE},
                    "versions": {"type": "array", "items": {"type": "string"}},
                    "ecosystem_specific": {"type": "object"},
                    "database_specific": {"type": "object"},
                },
            },
        },
        "references": {"type": ["array", "null"], "items": {
            "type": "object", "required": ["type", "url"],
            "properties": {"type": {"enum": ["ADVISORY", "ARTICLE", "DETECTION", "DISCUSSION", "REPORT", "FIX",
                                             "INTRODUCED", "GIT", "PACKAGE", "EVIDENCE", "WEB"]},
                           "url": {"type": "string"}}}},
        "credits": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        "database_specific": {"type": "object"},
    },
}


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(SCHEMA)
    return Draft202012Validator(SCHEMA)


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(record)"


def check_record(record: Any, where: str) -> str:
    """The record's id when it is a valid OSV record; else one InvalidInput ``where: id: field: why``."""
    if not isinstance(record, dict):
        raise InvalidInput(f"an OSV record is a JSON object, not {type(record).__name__}", location=where)
    label = f"{where}: {record['id']}" if isinstance(record.get("id"), str) else where
    if not conforms(record) and not (validator := _validator()).is_valid(record):
        error = min(validator.iter_errors(record), key=lambda e: [str(part) for part in e.absolute_path])
        raise InvalidInput(f"{_path(error.absolute_path)}: {error.message}", location=label,
                           hint="OSV records follow https://ossf.github.io/osv-schema/")
    for index, affected in enumerate(record.get("affected") or []):
        field = f"affected[{index}]"
        for number, span in enumerate(affected.get("ranges") or []):
            where = f"{field}.ranges[{number}]"
            if not any("introduced" in event for event in span["events"]):
                raise InvalidInput(f"{where}.events: at least one introduced event is required", location=label)
            if span["type"] == "GIT" and not span.get("repo"):
                raise InvalidInput(f"{where}.repo: required for a GIT range", location=label)
        package = affected.get("package")
        if package is None:
            continue
        ecosystem = package["ecosystem"]
        if ecosystem.split(":", 1)[0] not in ECOSYSTEMS:
            raise InvalidInput(f"{field}.package.ecosystem: unknown ecosystem {ecosystem!r}", location=label,
                               hint="the OSV specification's ecosystems: " + ", ".join(sorted(ECOSYSTEMS)))
        order = order_of(ecosystem)
        if order is None:
            continue
        _check_versions(affected, order, f"{label}: {field}")
    return str(record["id"])


def _check_versions(affected: dict[str, Any], order: str, where: str) -> None:
    for number, value in enumerate(affected.get("versions") or []):
        _check_version(order, value, f"{where}.versions[{number}]")
    for number, span in enumerate(affected.get("ranges") or []):
        if span["type"] != "ECOSYSTEM":
            continue
        for event_number, event in enumerate(span["events"]):
            (kind, value), = event.items()
            if (kind == "introduced" and value == "0") or (kind == "limit" and value == "*"):
                continue
            _check_version(order, value, f"{where}.ranges[{number}].events[{event_number}].{kind}")


def _check_version(order: str, value: str, where: str) -> None:
    if order == DPKG:  # python-debian's Version is the authority on what a Debian version is
        from debian.debian_support import Version

        try:
            Version(value)
        except ValueError as error:
            raise InvalidInput(f"{value!r} is not a valid dpkg version ({error})", location=where) from None
    version_key(order, value, where=where)
