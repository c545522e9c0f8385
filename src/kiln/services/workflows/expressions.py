"""Workflow documents' dynamic values: ``$.parameters.<name>``, ``$.stepOutputs.<step>.<output>``,
``$.workflowOutputs.<name>`` and ``$.imagebuilder.<variable>`` references (JSONPath, an optional
``[n]`` index), ``{{ $.… }}`` interpolation inside text, and ``if`` conditions.

An input key ending in ``.$`` holds a reference; the value resolved replaces it under the key
without the suffix. Conditions: ``and``/``or`` (lists), ``not`` (one condition) and the comparison
operators, each comparing the sibling ``value`` (a reference or a literal) with its argument.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

NODES = ("parameters", "stepOutputs", "workflowOutputs", "imagebuilder")
REFERENCE = re.compile(
    r"^\$\.(?P<node>[A-Za-z]+)\.(?P<first>[A-Za-z0-9_-]+)(?:\.(?P<second>[A-Za-z0-9_-]+))?(?:\[(?P<index>\d+)\])?$"
)
INTERPOLATION = re.compile(r"\{\{\s*(\$\.[^}\s]+)\s*\}\}")
COMPARISONS = {
    "stringEquals": "string",
    "booleanEquals": "boolean",
    "numberEquals": "number",
    "numberGreaterThan": "number",
    "numberGreaterThanEquals": "number",
    "numberLessThan": "number",
    "numberLessThanEquals": "number",
}
LOGICAL = ("and", "or", "not")


class ReferenceError_(ValueError):
    """A reference that does not parse or cannot be resolved."""


@dataclass(frozen=True)
class Reference:
    node: str
    first: str
    second: str | None
    index: int | None
    text: str


def parse_reference(text: str) -> Reference:
    match = REFERENCE.match(text.strip())
    if match is None or match["node"] not in NODES:
        raise ReferenceError_(
            f"'{text}' is not a reference ($.parameters.NAME, $.stepOutputs.STEP.OUTPUT, "
            "$.workflowOutputs.NAME or $.imagebuilder.VARIABLE)"
        )
    ref = Reference(match["node"], match["first"], match["second"],
                    int(match["index"]) if match["index"] is not None else None, text.strip())
    if ref.node == "stepOutputs" and ref.second is None:
        raise ReferenceError_(f"'{text}' names a step but no output ($.stepOutputs.STEP.OUTPUT)")
    if ref.node != "stepOutputs" and ref.second is not None:
        raise ReferenceError_(f"'{text}': $.{ref.node} takes one name")
    return ref


def embedded(text: str) -> list[str]:
    """The references interpolated in ``text`` (``{{ $.… }}``)."""
    return INTERPOLATION.findall(text)


@dataclass
class Context:
    parameters: dict[str, Any]
    step_outputs: dict[str, dict[str, Any]]
    workflow_outputs: dict[str, Any]
    system: dict[str, Any]

    def lookup(self, ref: Reference) -> Any:
        if ref.node == "parameters":
            table: Any = self.parameters
        elif ref.node == "stepOutputs":
            table = self.step_outputs.get(ref.first)
            if table is None:
                raise ReferenceError_(f"{ref.text}: step {ref.first} has no outputs (it did not run)")
        elif ref.node == "workflowOutputs":
            table = self.workflow_outputs
        else:
            table = self.system
        key = ref.second if ref.node == "stepOutputs" else ref.first
        if key not in table:
            raise ReferenceError_(f"{ref.text} has no value")
        value = table[key]
        if ref.index is not None:
            if not isinstance(value, list) or ref.index >= len(value):
                raise ReferenceError_(f"{ref.text}: no item {ref.index}")
            value = value[ref.index]
        return value

    def interpolate(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            value = self.lookup(parse_reference(match[1]))
            return value if isinstance(value, str) else json.dumps(value)

        return INTERPOLATION.sub(one, text)

    def resolve_inputs(self, value: Any) -> Any:
        """Inputs with every ``key.$`` reference resolved (the key loses the suffix) and every
        ``{{ $.… }}`` in text interpolated."""
        if isinstance(value, dict):
            resolved = {}
            for key, item in value.items():
                if key.endswith(".$"):
                    resolved[key[:-2]] = self.lookup(parse_reference(str(item)))
                else:
                    resolved[key] = self.resolve_inputs(item)
            return resolved
        if isinstance(value, list):
            return [self.resolve_inputs(item) for item in value]
        if isinstance(value, str) and "{{" in value:
            return self.interpolate(value)
        return value

    def operand(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("$."):
            return self.lookup(parse_reference(value))
        return value

    def decide(self, condition: dict[str, Any]) -> bool:
        """The truth of an ``if`` condition (validated when the document was created)."""
        if "and" in condition:
            return all(self.decide(part) for part in condition["and"])
        if "or" in condition:
            return any(self.decide(part) for part in condition["or"])
        if "not" in condition:
            return not self.decide(condition["not"])
        [operator] = [key for key in condition if key in COMPARISONS]
        return compare(operator, self.operand(condition.get("value")), condition[operator])


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def compare(operator: str, value: Any, baseline: Any) -> bool:
    kind = COMPARISONS[operator]
    if kind == "string":
        return _text(value) == _text(baseline)
    if kind == "boolean":
        return _boolean(value) is not None and _boolean(value) == _boolean(baseline)
    left, right = _number(value), _number(baseline)
    if left is None or right is None:
        return False
    return {
        "numberEquals": left == right,
        "numberGreaterThan": left > right,
        "numberGreaterThanEquals": left >= right,
        "numberLessThan": left < right,
        "numberLessThanEquals": left <= right,
    }[operator]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
