"""Scalars where AWSTOE documents a string input, read as AWSTOE reads them.

AWSTOE reads a step's inputs from YAML: a bare number or boolean given for a documented string
input (AWS's own examples write ``expectedBucketOwner: 123456789022``) is that scalar's text, and so
is one given as a value of a string map (InstallMSI ``properties``) and a number in a string list
(``arguments: [--port, 8080]``). A list or mapping given for a string stays an error, as does a
boolean in a string list (``commands: [true]`` is a slip, not a command), and inputs documented as
numbers or booleans are left to the model.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

if TYPE_CHECKING:
    from pydantic import BaseModel


def scalar_text(value: Any) -> Any:
    """``True`` -> ``"true"``, ``12`` -> ``"12"``, ``1.5`` -> ``"1.5"``; anything else unchanged."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _number_text(value: Any) -> Any:
    # a YAML boolean in a string list (``- yes``, ``- on``, ``- true``) is far more often a slip
    # than a wanted word, so it stays an error; numbers (``arguments: [--port, 8080]``) are text
    return value if isinstance(value, bool) else scalar_text(value)


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _wants_text(annotation: Any) -> bool:
    """A plain string (or a choice of strings), with no number or boolean allowed beside it."""
    members = _members(annotation)
    texts = any(m is str or (get_origin(m) is Literal and all(isinstance(a, str) for a in get_args(m)))
                for m in members)
    others = any(m in (int, float, bool, Any) for m in members)
    return texts and not others


def _coerce(annotation: Any, value: Any) -> Any:
    if _wants_text(annotation):
        return scalar_text(value)
    for member in _members(annotation):
        origin = get_origin(member)
        if origin is list and isinstance(value, list):
            (item,) = get_args(member) or (Any,)
            return [_number_text(entry) for entry in value] if _wants_text(item) else value
        if origin is dict and isinstance(value, dict):
            _, item = get_args(member) or (Any, Any)
            return {key: _coerce(item, entry) for key, entry in value.items()} if _wants_text(item) else value
    return value


def coerce_fields(model: type[BaseModel], data: Any) -> Any:
    """``data`` (a step's inputs mapping) with scalars turned to text where ``model`` wants text."""
    if not isinstance(data, dict):
        return data
    result = dict(data)
    for name, info in model.model_fields.items():
        key = info.alias if info.alias and info.alias in result else name
        if key in result and not isinstance(result[key], str):
            result[key] = _coerce(info.annotation, result[key])
    return result
