"""Step loops: ``for`` ranges and ``forEach`` lists or delimited strings (AWSTOE's constructs)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kiln.documents.expressions import has_expression
from kiln.documents.model import Loop

DELIMITERS = (".", ",", ";", ":", "\n", "\t", " ", "-", "_")
MAX_ITERATIONS = 10_000
LOOP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

# (relative path inside the loop mapping, message, whether the path names a key)
Problem = tuple[tuple[str | int, ...], str, bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check(raw: Any) -> list[Problem]:
    """Problems with a ``loop`` mapping, relative to the loop node."""
    if not isinstance(raw, dict):
        return [((), "loop must be a mapping with 'for' or 'forEach'", False)]
    problems: list[Problem] = []
    for key in raw:
        if key not in ("name", "for", "forEach"):
            problems.append(((key,), f"unknown loop key '{key}'", True))
    if "name" in raw and not (isinstance(raw["name"], str) and LOOP_NAME.match(raw["name"])):
        problems.append((("name",), "loop name must be 1-128 letters, digits, '-' or '_'", False))
    if ("for" in raw) == ("forEach" in raw):
        problems.append(((), "loop needs exactly one of 'for' or 'forEach'", False))
        return problems
    if "for" in raw:
        problems.extend(_check_for(raw["for"]))
    else:
        problems.extend(_check_for_each(raw["forEach"]))
    return problems


def _check_for(spec: Any) -> list[Problem]:
    if not isinstance(spec, dict):
        return [(("for",), "'for' must be a mapping with start, end and updateBy", False)]
    problems: list[Problem] = []
    for key in spec:
        if key not in ("start", "end", "updateBy"):
            problems.append((("for", key), f"unknown key '{key}' in 'for'", True))
    for key in ("start", "end", "updateBy"):
        if key not in spec:
            problems.append((("for",), f"'for' is missing '{key}'", False))
        elif not _is_int(spec[key]):
            problems.append((("for", key), f"'{key}' must be an integer (no expressions)", False))
    if problems:
        return problems
    start, end, step = spec["start"], spec["end"], spec["updateBy"]
    if step == 0:
        problems.append((("for", "updateBy"), "'updateBy' must not be 0", False))
    elif (end - start) * step < 0:
        problems.append((("for", "updateBy"), f"loop from {start} to {end} by {step} never ends", False))
    elif (end - start) // step + 1 > MAX_ITERATIONS:
        problems.append((("for",), f"loop has more than {MAX_ITERATIONS} iterations", False))
    return problems


def _check_for_each(spec: Any) -> list[Problem]:
    if isinstance(spec, list):
        if not spec:
            return [(("forEach",), "'forEach' list is empty", False)]
        return [
            (("forEach", index), "'forEach' items must be strings", False)
            for index, item in enumerate(spec)
            if isinstance(item, dict | list)
        ]
    if isinstance(spec, dict):
        problems: list[Problem] = []
        for key in spec:
            if key not in ("list", "delimiter"):
                problems.append((("forEach", key), f"unknown key '{key}' in 'forEach'", True))
        if not isinstance(spec.get("list"), str):
            problems.append((("forEach",), "'forEach' needs a 'list' string", False))
        delimiter = spec.get("delimiter", ",")
        if has_expression(delimiter) or delimiter not in DELIMITERS:
            problems.append(
                (("forEach", "delimiter"), "'delimiter' must be one of . , ; : newline tab space - _", False)
            )
        return problems
    return [(("forEach",), "'forEach' must be a list or a mapping with 'list' and 'delimiter'", False)]


def parse(raw: dict[str, Any]) -> Loop:
    """Build a :class:`Loop` from a checked mapping."""
    loop = Loop(name=raw.get("name"), raw=raw)
    if "for" in raw:
        spec = raw["for"]
        loop.range = (spec["start"], spec["end"], spec["updateBy"])
    elif isinstance(raw["forEach"], list):
        loop.items = list(raw["forEach"])
    else:
        loop.delimited = raw["forEach"]["list"]
        loop.delimiter = raw["forEach"].get("delimiter", ",")
    return loop


def iterations(loop: Loop, resolve: Callable[[Any], Any]) -> list[tuple[int, str]]:
    """The (index, value) pairs of a loop; ``resolve`` expands references in forEach values."""
    if loop.range is not None:
        start, end, step = loop.range
        values = [str(value) for value in range(start, end + (1 if step > 0 else -1), step)]
    elif loop.items is not None:
        values = [_text(resolve(item)) for item in loop.items]
    else:
        text = _text(resolve(loop.delimited or ""))
        values = text.split(loop.delimiter) if text else []
    return list(enumerate(values))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
