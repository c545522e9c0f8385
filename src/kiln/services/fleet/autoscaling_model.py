"""Auto Scaling's shapes as botocore's ``autoscaling`` model defines them, read at run time, and its
constraint errors worded as the service words them."""

from __future__ import annotations

from functools import cache
from typing import Any

from kiln.services.fleet.autoscaling_errors import ValidationError


@cache
def _model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("autoscaling")


def shape(name: str) -> Any:
    return _model().shape_for(name)


def _wire_path(field: str) -> str:
    """``Preferences.MinHealthyPercentage`` → ``preferences.minHealthyPercentage`` (the service's path)."""
    return ".".join(part[:1].lower() + part[1:] for part in field.split("."))


def constraint_error(value: Any, field: str, rule: str) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{_wire_path(field)}' failed to satisfy constraint: "
        f"Member must {rule}",
        location=field,
    )


def check_value(member_shape: Any, value: Any, field: str) -> Any:
    """``value`` if it fits ``member_shape`` (type, min/max, enum), else the service's ValidationError."""
    kind, meta = member_shape.type_name, member_shape.metadata
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"{field} must be an integer, not {value!r}", location=field)
        if "min" in meta and value < meta["min"]:
            raise constraint_error(value, field, f"have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            raise constraint_error(value, field, f"have value less than or equal to {meta['max']}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise ValidationError(f"{field} must be true or false, not {value!r}", location=field)
    elif kind == "string":
        if not isinstance(value, str):
            raise ValidationError(f"{field} must be a string, not {value!r}", location=field)
        if "enum" in meta and value not in meta["enum"]:
            raise constraint_error(value, field, f"satisfy enum value set: [{', '.join(meta['enum'])}]")
        if "min" in meta and len(value) < meta["min"]:
            raise constraint_error(value, field, f"have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            raise constraint_error(value, field, f"have length less than or equal to {meta['max']}")
    elif kind == "list":
        if not isinstance(value, list):
            raise ValidationError(f"{field} must be a list, not {value!r}", location=field)
        for index, item in enumerate(value):
            check_value(member_shape.member, item, f"{field}.{index + 1}")
    return value


def check_structure(
    shape_name: str, value: Any, field: str, *, supported: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """A structure's members checked against the model; unknown members (or, with ``supported``,
    members kiln does not act on) refused by name."""
    if not isinstance(value, dict):
        raise ValidationError(f"{field} is an object of {shape_name}'s members", location=field)
    members = shape(shape_name).members
    for key, item in value.items():
        if key not in members:
            raise ValidationError(f"unknown member {key!r}; {shape_name} has {', '.join(members)}",
                                  location=f"{field}.{key}")
        if supported is not None and key not in supported:
            raise ValidationError(f"{key} is not supported by kiln; it takes {', '.join(supported)}",
                                  location=f"{field}.{key}")
        check_value(members[key], item, f"{field}.{key}")
    return value
