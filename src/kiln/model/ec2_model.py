"""EC2's shapes as botocore's ``ec2`` model defines them, read at run time (never copied by hand).

Loading the model costs some 0.4 s, so it happens on first use, once per process, and only the
calls that take an enum or an attribute name from a caller use it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from kiln.ec2_errors import InvalidParameterValue


@cache
def _model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("ec2")


def shape(name: str) -> Any:
    return _model().shape_for(name)


def enum(name: str) -> tuple[str, ...]:
    """The values of a string enum shape, e.g. ``ImageAttributeName``."""
    return tuple(shape(name).enum)


def check_enum(value: str, name: str, parameter: str) -> str:
    """``value`` if it is one of the enum's values, else EC2's ``InvalidParameterValue``."""
    allowed = enum(name)
    if value not in allowed:
        raise InvalidParameterValue(
            f"Value ({value}) for parameter {parameter} is invalid. Allowed: {', '.join(allowed)}",
            location=parameter,
        )
    return value


def attribute_member(result_shape: str, attribute: str) -> tuple[str, Any]:
    """The member of an attribute result (``ImageAttribute``, ``DescribeSnapshotAttributeResult``)
    that carries ``attribute``: the one whose name begins with it, ignoring case (``launchPermission``
    → ``LaunchPermissions``, ``kernel`` → ``KernelId``), with its shape."""
    for member, member_shape in shape(result_shape).members.items():
        if member.lower().startswith(attribute.lower()):
            return member, member_shape
    raise InvalidParameterValue(f"{result_shape} has no member for {attribute}", location="Attribute")
