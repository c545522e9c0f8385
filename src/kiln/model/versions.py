"""Semantic versions, right-aligned ``x`` version filters and newest-match resolution.

Image Builder versions are ``major.minor.patch`` chosen by the user plus a build number the service
assigns. Each user node is an integer ``0..2^30-1`` (the API packs the four nodes into one 120-bit
integer, 30 bits each). A filter may replace nodes with ``x`` only from the right: ``1.x.x``,
``1.2.x`` and ``x.x.x`` are valid, ``x.2.x`` and ``1.x.8`` are not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from kiln.errors import InvalidInput

MAX_NODE = 2**30 - 1
_VERSION = re.compile(r"^([0-9]+)\.([0-9]+)\.([0-9]+)$")
_FILTER = re.compile(r"^([0-9]+|x)\.([0-9]+|x)\.([0-9]+|x)$")

T = TypeVar("T")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class VersionFilter:
    """Three nodes, each an int or None for ``x``; None only to the right of every int."""

    nodes: tuple[int | None, int | None, int | None]

    def __str__(self) -> str:
        return ".".join("x" if node is None else str(node) for node in self.nodes)

    @property
    def exact(self) -> Version | None:
        """The one version this filter names, if it has no wildcard."""
        if None in self.nodes:
            return None
        major, minor, patch = self.nodes
        return Version(major, minor, patch)  # type: ignore[arg-type]

    def matches(self, version: Version) -> bool:
        values = (version.major, version.minor, version.patch)
        return all(node is None or node == value for node, value in zip(self.nodes, values, strict=True))


def _check_node(text: str, value: int, field: str) -> int:
    if value > MAX_NODE:
        raise InvalidInput(
            f"version node {value} in {text!r} is larger than {MAX_NODE} (2^30-1)",
            location=field,
            hint="each of major, minor and patch must be between 0 and 1073741823",
        )
    return value


def parse_version(text: str, field: str = "semanticVersion") -> Version:
    """Parse a concrete ``major.minor.patch`` version (no wildcards)."""
    match = _VERSION.match(str(text))
    if not match:
        hint = "wildcards are not allowed here" if "x" in str(text) else "use major.minor.patch, e.g. 1.0.0"
        raise InvalidInput(f"{text!r} is not a semantic version major.minor.patch", location=field, hint=hint)
    major, minor, patch = (_check_node(text, int(group), field) for group in match.groups())
    return Version(major, minor, patch)


def parse_filter(text: str, field: str = "semanticVersion") -> VersionFilter:
    """Parse a version or a version filter with right-aligned ``x`` wildcards."""
    match = _FILTER.match(str(text))
    if not match:
        raise InvalidInput(
            f"{text!r} is not a version or version filter",
            location=field,
            hint="use major.minor.patch with optional right-aligned x wildcards, e.g. 1.x.x",
        )
    nodes: list[int | None] = []
    for group in match.groups():
        if group == "x":
            nodes.append(None)
            continue
        if nodes and nodes[-1] is None:
            raise InvalidInput(
                f"version filter {text!r} has a number after an x wildcard",
                location=field,
                hint="wildcards must be right-aligned: 1.x.x, 1.2.x and x.x.x are valid; "
                "x.2.x and 1.x.8 are not",
            )
        nodes.append(_check_node(text, int(group), field))
    return VersionFilter((nodes[0], nodes[1], nodes[2]))


def semver_key(version: Version, build: int = 0) -> int:
    """Image Builder's single-integer form: 30 bits per node (major, minor, patch, build)."""
    return (version.major << 90) | (version.minor << 60) | (version.patch << 30) | build


def newest(
    candidates: Iterable[T],
    version_filter: VersionFilter,
    key: Callable[[T], tuple[Version, int]],
) -> T | None:
    """The candidate with the highest (version, build) matching the filter, or None."""
    best: T | None = None
    best_key: tuple[Version, int] | None = None
    for candidate in candidates:
        version, build = key(candidate)
        if not version_filter.matches(version):
            continue
        if best_key is None or (version, build) > best_key:
            best, best_key = candidate, (version, build)
    return best
