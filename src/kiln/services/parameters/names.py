"""What Parameter Store accepts as a name, a label, a selector and a type, read from its rules and
botocore's ``ssm`` model; every refusal names the field."""

from __future__ import annotations

import re
from functools import cache

from kiln.services.parameters.errors import (
    HierarchyLevelLimitExceeded,
    UnsupportedParameterType,
    ValidationException,
)

MAX_NAME = 1011  # what is left of PSParameterName's 2048 once SSM has its internal prefix
MAX_LEVELS = 15
MAX_LABEL = 100
NAME_CHARACTERS = re.compile(r"^[a-zA-Z0-9_.\-/]+$")
LABEL = re.compile(r"^[a-zA-Z0-9_.\-]+$")
RESERVED = ("aws", "ssm")
SUPPORTED_TYPES = ("String", "StringList")
DATA_TYPES = ("text", "aws:ec2:image")
IMAGE_DATA_TYPE = "aws:ec2:image"


@cache
def _ssm_model():  # type: ignore[no-untyped-def]
    import botocore.session

    return botocore.session.get_session().get_service_model("ssm")


def check_name(name: str, field: str = "Name") -> str:
    """The name with outer spaces trimmed (as SSM does), or one error saying what is wrong."""
    name = name.strip()
    if not name:
        raise ValidationException("a parameter name is required", location=field)
    if len(name) > MAX_NAME:
        raise ValidationException(f"a parameter name has at most {MAX_NAME} characters", location=field)
    if not NAME_CHARACTERS.match(name):
        bad = sorted({char for char in name if not NAME_CHARACTERS.match(char)})
        raise ValidationException(
            f"parameter name {name!r} has characters SSM does not allow ({''.join(bad)!r}); "
            "use letters, digits, '.', '-', '_' and '/' between levels",
            location=field,
        )
    if "/" in name:
        if not name.startswith("/"):
            raise ValidationException(
                f"parameter name {name!r} has levels but no leading '/' (a hierarchy is /a/b/c)", location=field
            )
        if name.endswith("/") or "//" in name:
            raise ValidationException(f"parameter name {name!r} has an empty level", location=field)
    if name.lstrip("/").lower().startswith(RESERVED):
        raise ValidationException(
            f"parameter name {name!r} begins with 'aws' or 'ssm', which are reserved", location=field
        )
    levels = name.count("/") or 1
    if levels > MAX_LEVELS:
        raise HierarchyLevelLimitExceeded(
            f"parameter name {name!r} has {levels} levels; the limit is {MAX_LEVELS}", location=field
        )
    return name


def split_selector(selector: str, field: str = "Name") -> tuple[str, int | None, str | None]:
    """``name``, ``name:3`` or ``name:label`` → (name, version, label)."""
    name, sep, tail = selector.strip().partition(":")
    name = check_name(name, field)
    if not sep:
        return name, None, None
    if tail.isdigit():
        return name, int(tail), None
    if not tail:
        raise ValidationException(f"{selector!r} has an empty selector after ':'", location=field)
    return name, None, tail


def label_problem(label: str) -> str | None:
    """Why ``label`` is not a valid label (None when it is): SSM reports these as ``InvalidLabels``."""
    if not 1 <= len(label) <= MAX_LABEL:
        return f"a label has 1 to {MAX_LABEL} characters"
    if not LABEL.match(label):
        return "a label has only letters, digits, '.', '-' and '_'"
    if label[0].isdigit() or label.lower().startswith(RESERVED):
        return "a label cannot begin with a digit, 'aws' or 'ssm'"
    return None


def check_type(parameter_type: str, field: str = "Type") -> str:
    allowed = tuple(_ssm_model().shape_for("ParameterType").enum)
    if parameter_type not in allowed:
        raise ValidationException(
            f"Type {parameter_type!r} is not one of {', '.join(allowed)}", location=field
        )
    if parameter_type not in SUPPORTED_TYPES:
        raise UnsupportedParameterType(
            f"kiln's parameter store keeps {' and '.join(SUPPORTED_TYPES)} parameters, not {parameter_type}",
            location=field,
        )
    return parameter_type


def check_data_type(data_type: str, parameter_type: str, field: str = "DataType") -> str:
    if data_type not in DATA_TYPES:
        raise ValidationException(
            f"DataType {data_type!r} is not one of {', '.join(DATA_TYPES)}", location=field
        )
    if data_type == IMAGE_DATA_TYPE and parameter_type != "String":
        raise ValidationException(f"DataType {IMAGE_DATA_TYPE} needs Type String, not {parameter_type}",
                                  location=field)
    return data_type
