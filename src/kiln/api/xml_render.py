"""XML answers of the form protocols, rendered by functions compiled once per botocore output shape.

Walking the model's shapes for every value (their members, serialization names and types, each a dict
lookup in botocore) cost most of a large DescribeImages answer; here each shape becomes, once, a function
of its value. Members not in the shape are left out: kiln's own fields never reach an XML client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from kiln.api.model import blob_text, iso8601

Render = Callable[[Any], str]

# id(shape) -> (shape, its renderer); botocore keeps one shape object per member of a cached model, and
# the shape is held here so its id is never reused.
_DONE: dict[int, tuple[Any, Render]] = {}
_LOCK = threading.Lock()


def _text(value: Any) -> str:
    text = value if type(value) is str else str(value)
    return escape(text) if ("&" in text or "<" in text or ">" in text) else text


def _boolean(value: Any) -> str:
    return "true" if value else "false"


def _scalar(kind: str) -> Render:
    if kind == "boolean":
        return _boolean
    if kind == "timestamp":
        return iso8601
    if kind == "blob":
        return blob_text
    return _text


def _build(shape: Any, building: dict[int, tuple[Any, Render]]) -> Render:
    found = _DONE.get(id(shape)) or building.get(id(shape))
    if found is not None:
        return found[1]
    kind = shape.type_name
    if kind == "structure":
        members: list[tuple[str, Render]] = []

        def structure(value: Any) -> str:
            if not isinstance(value, dict):
                return ""
            memo = getattr(value, "memo", None)
            if memo is not None:  # a value that says what it was rendered to (the store's AMI shapes)
                known = memo.get(key)
                if known is not None and (value.frozen or value == value.source):
                    return str(known)
            text = "".join([wrap(item) for member, wrap in members if (item := value.get(member)) is not None])
            if memo is not None and (value.frozen or value == value.source):
                memo[key] = text
            return text

        key = ("xml", id(shape))  # the shape is held in _DONE: its id is never reused
        building[id(shape)] = (shape, structure)  # before its members: a shape may contain itself
        for member, member_shape in shape.members.items():
            members.append((member, _member(member_shape.serialization.get("name", member), member_shape, building)))
        return structure
    if kind == "list":
        tag = shape.member.serialization.get("name", "member")
        item = _build(shape.member, building)
        render: Render = lambda value: "".join([f"<{tag}>{item(v)}</{tag}>" for v in value or []])  # noqa: E731
    elif kind == "map":
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        key, entry = _scalar(shape.key.type_name), _build(shape.value, building)
        render = lambda value: "".join([  # noqa: E731
            f"<entry><{key_name}>{key(k)}</{key_name}><{value_name}>{entry(v)}</{value_name}></entry>"
            for k, v in (value or {}).items()
        ])
    else:
        render = _scalar(kind)
    building[id(shape)] = (shape, render)
    return render


def _member(name: str, shape: Any, building: dict[int, tuple[Any, Render]]) -> Render:
    if shape.type_name == "list" and shape.serialization.get("flattened"):
        tag = shape.member.serialization.get("name", name)
        item = _build(shape.member, building)
        return lambda value: "".join([f"<{tag}>{item(v)}</{tag}>" for v in value])
    inner = _build(shape, building)
    opening, closing = f"<{name}>", f"</{name}>"
    return lambda value: opening + inner(value) + closing


def renderer(shape: Any) -> Render:
    """The function giving the content of one element holding a value of ``shape``."""
    found = _DONE.get(id(shape))
    if found is not None:
        return found[1]
    with _LOCK:  # compiled whole before it is published: no thread sees a structure without its members
        building: dict[int, tuple[Any, Render]] = {}
        render = _build(shape, building)
        _DONE.update(building)
    return render


def to_xml(shape: Any, value: Any) -> str:
    return renderer(shape)(value)
