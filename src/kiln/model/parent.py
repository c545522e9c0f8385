"""A recipe's ``parentImage``: an AMI id, an Image Builder image ARN (``x`` wildcards allowed), an SSM
parameter (``ssm:<name>``, ``ssm:<name>:<version|label>`` or ``ssm:<parameter ARN>``) holding an AMI
id, or a bootstrap source ``<distribution>:<suite>`` (``debian:bookworm``, ``ubuntu:noble``) that kiln
builds from the distribution's own packages. ARN filters and parameters are resolved at build time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from kiln.errors import InvalidInput
from kiln.model.arn import Arn, parse_arn
from kiln.model.ids import is_id

BOOTSTRAP_DISTRIBUTIONS: set[str] = {"debian", "ubuntu"}
_BOOTSTRAP = re.compile(r"^(?P<distribution>[a-z][a-z0-9-]*):(?P<suite>[a-z0-9][a-z0-9._-]*)$")


@dataclass(frozen=True)
class ParentImage:
    kind: Literal["ami", "image", "ssm", "bootstrap"]
    value: str
    image_arn: Arn | None = None
    distribution: str | None = None
    suite: str | None = None


def parse_parent_image(value: str, *, field: str = "parentImage") -> ParentImage:
    text = value.strip()
    if text.startswith("ami-"):
        if not is_id(text, "ami"):
            raise InvalidInput(f"{text!r} is not an AMI id (ami- and 17 hex digits)", location=field)
        return ParentImage("ami", text)
    if text.startswith("arn:") or text.startswith("image/"):
        arn = parse_arn(text, field=field, resource_type="image", allow_short=True)
        if arn.version is None:
            raise InvalidInput(
                f"image ARN {text!r} needs a version or version filter (e.g. …/x.x.x)", location=field
            )
        return ParentImage("image", str(arn), image_arn=arn)
    if text.startswith("ssm:"):
        selector = text[len("ssm:"):]
        if not selector.strip():
            raise InvalidInput(f"parentImage {text!r} names no SSM parameter", location=field,
                               hint="ssm:/golden/base or ssm:/golden/base:3")
        return ParentImage("ssm", selector)
    match = _BOOTSTRAP.match(text)
    if match and match.group("distribution") in BOOTSTRAP_DISTRIBUTIONS:
        return ParentImage(
            "bootstrap", text, distribution=match.group("distribution"), suite=match.group("suite")
        )
    known = ", ".join(sorted(BOOTSTRAP_DISTRIBUTIONS))
    raise InvalidInput(
        f"parentImage {text!r} is not an AMI id, an image ARN or a bootstrap source",
        location=field,
        hint=f"bootstrap sources are <distribution>:<suite> with distribution one of {known}, "
        "e.g. debian:bookworm",
    )
