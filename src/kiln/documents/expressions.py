"""``{{ expression }}`` references: parameters, constants, chaining, loops, env and context.

Forms (AWSTOE's): ``{{ Name }}`` (parameter or constant), ``{{ phase.Step.outputs.field }}`` and
``{{ phase.Step.inputs[0].field }}`` (chaining), ``{{ loop.index }}`` / ``{{ loop.value }}`` and
``{{ <loopName>.index }}``, ``{{ env:VAR }}`` and ``{{ context:key }}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PATTERN = re.compile(r"\{\{\s*((?:(?!\}\}).)*?)\s*\}\}")
CHAIN = re.compile(
    r"^(?P<phase>[^.\s\[\]]+)\.(?P<step>[^.\s\[\]]+)\.(?P<kind>inputs|outputs)"
    r"(?:\[(?P<index>\d+)\])?(?:\.(?P<field>[A-Za-z0-9_-]+))?$"
)
LOOP = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)\.(?P<attr>index|value)$")
NAME = re.compile(r"^[A-Za-z0-9_-]+$")
CONTEXT_KEYS = (
    "executionId", "accountId", "region", "osPlatform", "osName", "osVersion",
    "date", "dateTime", "uuid", "hostname", "phase", "step",
)


class ExpressionError(Exception):
    """A reference that cannot be resolved."""


@dataclass
class Reference:
    """One parsed ``{{ }}`` reference."""

    text: str
    kind: str  # variable | chain | loop | env | context | ssm | imds | unknown
    name: str = ""
    phase: str = ""
    step: str = ""
    io: str = ""
    index: int | None = None
    field: str | None = None


def parse(text: str) -> Reference:
    text = text.strip()
    if text.startswith("env:"):
        return Reference(text, "env", name=text[4:])
    if text.startswith("context:"):
        return Reference(text, "context", name=text[8:])
    if text.startswith("aws:ssm:"):
        return Reference(text, "ssm", name=text[8:])
    if text.startswith("aws:imds:"):
        return Reference(text, "imds", name=text[9:])
    if NAME.match(text):
        return Reference(text, "variable", name=text)
    match = LOOP.match(text)
    if match:
        return Reference(text, "loop", name=match["name"], field=match["attr"])
    match = CHAIN.match(text)
    if match:
        index = int(match["index"]) if match["index"] is not None else None
        return Reference(
            text, "chain", phase=match["phase"], step=match["step"], io=match["kind"],
            index=index, field=match["field"],
        )
    return Reference(text, "unknown")


def references(value: Any) -> list[Reference]:
    """Every reference in a string, list or mapping (recursively)."""
    found: list[Reference] = []
    if isinstance(value, str):
        found.extend(parse(match.group(1)) for match in PATTERN.finditer(value))
    elif isinstance(value, list):
        for item in value:
            found.extend(references(item))
    elif isinstance(value, dict):
        for item in value.values():
            found.extend(references(item))
    return found


def has_expression(value: Any) -> bool:
    return isinstance(value, str) and PATTERN.search(value) is not None


@dataclass
class Scope:
    """Everything a reference can see while one step runs."""

    variables: dict[str, Any] = field(default_factory=dict)
    # phase -> step -> {"inputs": resolved inputs, "outputs": outputs mapping}
    steps: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # "loop" and the loop's name -> (index, value); absent outside a loop
    loops: dict[str, tuple[int, Any]] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)

    def lookup(self, ref: Reference) -> Any:
        if ref.kind == "variable":
            if ref.name not in self.variables:
                raise ExpressionError(f"undefined parameter or constant '{ref.name}'")
            return self.variables[ref.name]
        if ref.kind == "loop":
            if ref.name not in self.loops:
                raise _Unresolved()
            index, value = self.loops[ref.name]
            return index if ref.field == "index" else value
        if ref.kind == "chain":
            return self._chain(ref)
        if ref.kind == "env":
            if ref.name not in self.env:
                raise ExpressionError(f"environment variable '{ref.name}' is not set")
            return self.env[ref.name]
        if ref.kind == "context":
            if ref.name not in self.context:
                raise ExpressionError(f"unknown context variable '{ref.name}'")
            return self.context[ref.name]
        if ref.kind in ("ssm", "imds"):
            raise ExpressionError(f"'{{{{ {ref.text} }}}}' needs AWS, which this target does not reach")
        raise ExpressionError(f"cannot understand '{{{{ {ref.text} }}}}'")

    def _chain(self, ref: Reference) -> Any:
        step = self.steps.get(ref.phase, {}).get(ref.step)
        if step is None:
            raise ExpressionError(f"step '{ref.phase}.{ref.step}' has not run")
        value = step.get(ref.io)
        if isinstance(value, list):
            index = ref.index or 0
            if index >= len(value):
                raise ExpressionError(f"'{ref.text}': index {index} out of range")
            value = value[index]
        elif ref.index not in (None, 0):
            raise ExpressionError(f"'{ref.text}': {ref.io} is not a list")
        if ref.field is None:
            return value
        if not isinstance(value, Mapping) or ref.field not in value:
            raise ExpressionError(f"'{ref.text}': step has no {ref.io[:-1]} '{ref.field}'")
        return value[ref.field]


class _Unresolved(Exception):
    """A loop reference outside a loop: AWSTOE leaves it as written."""


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return "" if value is None else str(value)


def resolve_string(text: str, scope: Scope) -> Any:
    """Resolve the references in one string.

    A string that is exactly one reference to a list or mapping (chained inputs/outputs) keeps that
    value; everything else becomes text (pydantic's lax mode turns "5" into 5 where a model wants it).
    """
    whole = PATTERN.fullmatch(text)
    if whole:
        try:
            value = scope.lookup(parse(whole.group(1)))
        except _Unresolved:
            return text
        return value if isinstance(value, list | dict) else _text(value)

    def replace(match: re.Match[str]) -> str:
        try:
            return _text(scope.lookup(parse(match.group(1))))
        except _Unresolved:
            return match.group(0)

    return PATTERN.sub(replace, text)


def resolve(value: Any, scope: Scope) -> Any:
    """Resolve references in strings anywhere inside ``value`` (lists and mappings included)."""
    if isinstance(value, str):
        return resolve_string(value, scope) if "{{" in value else value
    if isinstance(value, list):
        return [resolve(item, scope) for item in value]
    if isinstance(value, dict):
        return {key: resolve(item, scope) for key, item in value.items()}
    return value
