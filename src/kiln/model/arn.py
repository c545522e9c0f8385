"""Image Builder ARNs: ``arn:aws:imagebuilder:<region>:<account>:<type>/<name>[/<version>[/<build>]]``.

The name segment is the resource name lower-cased with spaces turned into hyphens (``My Recipe`` →
``my-recipe``); Amazon-managed resources use the account ``aws``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from kiln.errors import InvalidInput
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.versions import Version, VersionFilter, parse_filter

MANAGED_ACCOUNT = "aws"
VERSIONED_TYPES = (
    "component",
    "image-recipe",
    "container-recipe",
    "image",
    "workflow/build",
    "workflow/test",
    "workflow/distribution",
)
UNVERSIONED_TYPES = (
    "infrastructure-configuration",
    "distribution-configuration",
    "image-pipeline",
    "lifecycle-policy",
)
RESOURCE_TYPES = VERSIONED_TYPES + UNVERSIONED_TYPES

_ARN = re.compile(
    r"^arn:(?P<partition>aws[^:]*):imagebuilder:(?P<region>[^:]+):(?P<account>[0-9]{12}|aws(?:-[a-z-]+)?):"
    r"(?P<type>workflow/(?:build|test|distribution)|[a-z-]+)/(?P<name>[a-z0-9-_]+)"
    r"(?:/(?P<version>[0-9x]+\.[0-9x]+\.[0-9x]+)(?:/(?P<build>[0-9]+))?)?$"
)
_SHORT = re.compile(
    r"^(?P<type>workflow/(?:build|test|distribution)|[a-z-]+)/(?P<name>[a-z0-9-_]+)"
    r"(?:/(?P<version>[0-9x]+\.[0-9x]+\.[0-9x]+)(?:/(?P<build>[0-9]+))?)?$"
)


def arn_name(name: str) -> str:
    """The ARN form of a resource name: lower case, spaces as hyphens."""
    return "-".join(name.strip().lower().split(" "))


@dataclass(frozen=True)
class Arn:
    resource_type: str
    name: str
    version: VersionFilter | None = None
    build: int | None = None
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    partition: str = "aws"

    def __str__(self) -> str:
        text = (
            f"arn:{self.partition}:imagebuilder:{self.region}:{self.account}:{self.resource_type}/{self.name}"
        )
        if self.version is not None:
            text += f"/{self.version}"
            if self.build is not None:
                text += f"/{self.build}"
        return text

    @property
    def is_build_version(self) -> bool:
        return self.build is not None

    @property
    def exact_version(self) -> Version | None:
        return None if self.version is None else self.version.exact

    def without_build(self) -> Arn:
        return replace(self, build=None)

    def with_build(self, build: int) -> Arn:
        return replace(self, build=build)


def make_arn(
    resource_type: str,
    name: str,
    version: Version | VersionFilter | str | None = None,
    build: int | None = None,
    *,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
) -> Arn:
    """Build the ARN of a resource from its display name and version."""
    if resource_type not in RESOURCE_TYPES:
        raise ValueError(f"unknown Image Builder resource type {resource_type!r}")
    if isinstance(version, Version):
        version = VersionFilter((version.major, version.minor, version.patch))
    elif isinstance(version, str):
        version = parse_filter(version)
    return Arn(resource_type, arn_name(name), version, build, region=region, account=account)


def parse_arn(
    text: str,
    *,
    field: str = "arn",
    resource_type: str | None = None,
    allow_short: bool = False,
) -> Arn:
    """Parse an ARN; with ``allow_short`` also ``<type>/<name>[/<version>[/<build>]]``.

    A short form gets the default region and account. ``resource_type`` restricts the type.
    """
    text = str(text).strip()
    match = _ARN.match(text)
    fields: dict[str, str | None]
    if match:
        fields = match.groupdict()
    elif allow_short and (short := _SHORT.match(text)):
        fields = {
            **short.groupdict(),
            "partition": "aws",
            "region": DEFAULT_REGION,
            "account": DEFAULT_ACCOUNT,
        }
    else:
        expected = f"arn:aws:imagebuilder:<region>:<account>:{resource_type or '<type>'}/<name>[/<version>]"
        raise InvalidInput(
            f"{text!r} is not an Image Builder ARN", location=field, hint=f"expected {expected}"
        )
    kind = fields["type"] or ""
    if kind not in RESOURCE_TYPES:
        raise InvalidInput(f"unknown Image Builder resource type {kind!r} in {text!r}", location=field)
    if resource_type is not None and kind != resource_type:
        raise InvalidInput(f"{text!r} is a {kind} ARN, expected a {resource_type} ARN", location=field)
    version_text, build_text = fields["version"], fields["build"]
    if kind in UNVERSIONED_TYPES and version_text is not None:
        raise InvalidInput(f"{kind} ARNs carry no version: {text!r}", location=field)
    version = parse_filter(version_text, field) if version_text is not None else None
    build = int(build_text) if build_text is not None else None
    if build is not None and version is not None and version.exact is None:
        raise InvalidInput(
            f"a build number needs a concrete version, not {version}: {text!r}", location=field
        )
    return Arn(
        kind,
        fields["name"] or "",
        version,
        build,
        region=fields["region"] or DEFAULT_REGION,
        account=fields["account"] or DEFAULT_ACCOUNT,
        partition=fields["partition"] or "aws",
    )
