"""A fast check that an OSV record has the shape ``osv_schema.SCHEMA`` requires, written out by hand.

``conforms`` answers True only for a record the schema accepts; whenever it answers False, ``jsonschema``
checks the record and says why (it stays the authority on what is wrong). Checking 100,000 records with
``jsonschema`` costs minutes; this, a second or two. ``tests/scanning/test_osv_shape.py`` holds the two
in agreement over valid records and many mutations of them.
"""

from __future__ import annotations

import re
from typing import Any

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*-[A-Za-z0-9._:-]+$"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
_ID = re.compile(ID_PATTERN)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_SEVERITY_TYPES = frozenset({"CVSS_V2", "CVSS_V3", "CVSS_V4", "Ubuntu"})
_RANGE_TYPES = frozenset({"GIT", "SEMVER", "ECOSYSTEM"})
_EVENT_KINDS = frozenset({"introduced", "fixed", "last_affected", "limit"})
_REFERENCE_TYPES = frozenset({"ADVISORY", "ARTICLE", "DETECTION", "DISCUSSION", "REPORT", "FIX", "INTRODUCED",
                              "GIT", "PACKAGE", "EVIDENCE", "WEB"})
_STRINGS = ("schema_version", "summary", "details")
_STRING_LISTS = ("upstream", "related")
_TIMES = ("published", "withdrawn")


def _is_strings(value: Any) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def _severity_ok(value: Any) -> bool:
    if value is None:
        return True
    if type(value) is not list:
        return False
    for entry in value:
        if type(entry) is not dict or "type" not in entry or "score" not in entry:
            return False
        kind, score = entry["type"], entry["score"]
        if type(kind) is not str or kind not in _SEVERITY_TYPES or type(score) is not str or not score:
            return False
    return True


def _event_ok(event: Any) -> bool:
    if type(event) is not dict or len(event) != 1:
        return False
    (kind, value), = event.items()
    return kind in _EVENT_KINDS and type(value) is str and bool(value)


def _range_ok(span: Any) -> bool:
    if type(span) is not dict or "type" not in span or "events" not in span:
        return False
    kind, events = span["type"], span["events"]
    if type(kind) is not str or kind not in _RANGE_TYPES or type(events) is not list or not events:
        return False
    if "repo" in span and type(span["repo"]) is not str:
        return False
    if "database_specific" in span and type(span["database_specific"]) is not dict:
        return False
    return all(_event_ok(event) for event in events)


def _package_ok(package: Any) -> bool:
    if type(package) is not dict:
        return False
    ecosystem, name = package.get("ecosystem"), package.get("name")
    if type(ecosystem) is not str or not ecosystem or type(name) is not str or not name:
        return False
    return "purl" not in package or type(package["purl"]) is str


def _affected_ok(affected: Any) -> bool:
    if type(affected) is not dict:
        return False
    if "package" in affected and not _package_ok(affected["package"]):
        return False
    if "severity" in affected and not _severity_ok(affected["severity"]):
        return False
    if "ranges" in affected:
        ranges = affected["ranges"]
        if type(ranges) is not list or not all(_range_ok(span) for span in ranges):
            return False
    if "versions" in affected and not _is_strings(affected["versions"]):
        return False
    return all(type(affected[key]) is dict for key in ("ecosystem_specific", "database_specific") if key in affected)


def _references_ok(value: Any) -> bool:
    if value is None:
        return True
    if type(value) is not list:
        return False
    for entry in value:
        if type(entry) is not dict or "type" not in entry or "url" not in entry:
            return False
        if type(entry["type"]) is not str or entry["type"] not in _REFERENCE_TYPES or type(entry["url"]) is not str:
            return False
    return True


def conforms(record: Any) -> bool:
    """True when ``record`` is certainly valid against ``osv_schema.SCHEMA``; False: ask jsonschema."""
    if type(record) is not dict:
        return False
    record_id, modified = record.get("id"), record.get("modified")
    if type(record_id) is not str or not _ID.search(record_id):
        return False
    if type(modified) is not str or not _TIMESTAMP.search(modified):
        return False
    for key in _TIMES:
        if key in record and (type(record[key]) is not str or not _TIMESTAMP.search(record[key])):
            return False
    for key in _STRINGS:
        if key in record and type(record[key]) is not str:
            return False
    for key in _STRING_LISTS:
        if key in record and not _is_strings(record[key]):
            return False
    if "aliases" in record and record["aliases"] is not None and not _is_strings(record["aliases"]):
        return False
    if "severity" in record and not _severity_ok(record["severity"]):
        return False
    if "affected" in record:
        affected = record["affected"]
        if affected is not None and (type(affected) is not list or not all(_affected_ok(a) for a in affected)):
            return False
    if "references" in record and not _references_ok(record["references"]):
        return False
    if "credits" in record:
        credits = record["credits"]
        if type(credits) is not list or not all(type(c) is dict and "name" in c for c in credits):
            return False
    return "database_specific" not in record or type(record["database_specific"]) is dict
