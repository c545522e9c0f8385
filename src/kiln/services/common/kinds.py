"""What ``kiln apply`` needs to know of a resource family: its ``kind``, request shape, identity,
references and how to write it. Each family defines its ``APPLY_KIND``; ``kiln.services.registry``
lists them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.arn import parse_arn
from kiln.model.shapes import Shape
from kiln.model.versions import parse_filter, parse_version

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass
class ApplyContext:
    account: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION
    base_dir: Path | None = None


@dataclass(frozen=True)
class KindHandler:
    """How ``apply`` handles one ``kind``.

    ``request_model`` validates the body (minus ``kind``); ``identity`` names what the document
    creates; ``references`` lists what it needs; ``apply`` writes it in the given session and returns
    ``(arn, "created"|"unchanged"|"updated")``.
    """

    kind: str
    request_model: type[Shape]
    identity: Callable[[Any], Ref]
    references: Callable[[Any], list[Ref]]
    apply: Callable[[Session, Any, ApplyContext, str], tuple[str, str]]


@dataclass(frozen=True)
class Ref:
    """A resource by ARN type and ARN name; ``version`` is a concrete version (identity) or a filter
    (reference); None matches any version."""

    resource_type: str
    name: str
    version: str | None = None

    def satisfied_by(self, other: Ref) -> bool:
        if (self.resource_type, self.name) != (other.resource_type, other.name):
            return False
        if self.version is None or other.version is None:
            return True
        return parse_filter(self.version).matches(parse_version(other.version))


def ref_from_arn(arn: str, resource_type: str) -> Ref:
    """The Ref an ARN (or short form) reference stands for."""
    parsed = parse_arn(arn, resource_type=resource_type, allow_short=True)
    return Ref(resource_type, parsed.name, None if parsed.version is None else str(parsed.version))


def no_references(_: Any) -> list[Ref]:
    return []
