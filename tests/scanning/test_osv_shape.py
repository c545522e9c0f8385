"""The hand-written fast check of an OSV record's shape never accepts what the JSON Schema (checked by
``jsonschema``, the authority) refuses: over full records and every one-place mutation of them."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from tests.scanning.conftest import affected, fixed, osv

from kiln.services.scanning.osv_schema import _validator
from kiln.services.scanning.osv_shape import conforms

FULL = osv(
    "DSA-5000-1",
    affected("Debian:12", "openssl", *fixed("3.0.11-1~deb12u2"), versions=["3.0.9-1"],
             severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
             ecosystem_specific={"urgency": "high"}, database_specific={"source": "x"}),
    {"package": {"ecosystem": "Alpine:v3.19", "name": "musl", "purl": "pkg:apk/alpine/musl"},
     "ranges": [{"type": "GIT", "repo": "https://git.example/musl", "events": [{"introduced": "0"},
                                                                             {"last_affected": "abc"},
                                                                             {"limit": "*"}],
                 "database_specific": {}}]},
    aliases=["CVE-2026-1000"], upstream=["CVE-2026-1000"], related=["USN-1-1"], summary="s", details="d",
    withdrawn="2026-11-02T00:00:00.5+01:00", severity=[{"type": "Ubuntu", "score": "high"}],
    references=[{"type": "ADVISORY", "url": "https://example/advisory"}], credits=[{"name": "someone"}],
    database_specific={"k": 1},
)
MINIMAL = {"id": "GHSA-1-2", "modified": "2026-01-01T00:00:00Z"}
NULLS = {**MINIMAL, "aliases": None, "severity": None, "affected": None, "references": None}
BAD_VALUES: list[Any] = [None, 0, 1.5, True, "", "x", "not-a time", [], [None], ["x"], {}, {"x": 1},
                         [{}], [{"introduced": "0", "fixed": "1"}], [{"type": "WEB"}]]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*path, index))


def _mutations(record: dict[str, Any]) -> Iterator[Any]:
    for path in _paths(record):
        if not path:
            yield from BAD_VALUES
            continue
        for bad in BAD_VALUES:
            changed = copy.deepcopy(record)
            holder = changed
            for part in path[:-1]:
                holder = holder[part]
            holder[path[-1]] = copy.deepcopy(bad)
            yield changed
        dropped = copy.deepcopy(record)
        holder = dropped
        for part in path[:-1]:
            holder = holder[part]
        del holder[path[-1]]
        yield dropped
        if isinstance(holder, dict):
            extra = copy.deepcopy(record)
            holder = extra
            for part in path[:-1]:
                holder = holder[part]
            holder["fixed"] = "9"  # a second key: an event must have exactly one
            yield extra


@pytest.mark.parametrize("record", [FULL, MINIMAL, NULLS], ids=["full", "minimal", "nulls"])
def test_valid_records_take_the_fast_path(record: dict[str, Any]) -> None:
    assert _validator().is_valid(record)
    assert conforms(record)


@pytest.mark.parametrize("record", [FULL, MINIMAL, NULLS], ids=["full", "minimal", "nulls"])
def test_the_fast_check_never_accepts_what_the_schema_refuses(record: dict[str, Any]) -> None:
    validator = _validator()
    checked = refused = 0
    for mutated in _mutations(record):
        checked += 1
        if not validator.is_valid(mutated):
            refused += 1
            assert not conforms(mutated), mutated
    assert refused > 20 and checked > refused  # the mutations did reach both answers
