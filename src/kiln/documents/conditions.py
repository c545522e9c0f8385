"""``if`` conditions and the comparison/logical operators AWSTOE shares with its Assert action.

Two-operand operators compare the sibling ``value`` against the operator's argument (the baseline):
``numberLessThan: 2`` with ``value: 1`` is true. String comparisons ignore case.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from kiln.documents.executor import Executor

STRING_OPS = {
    "stringEquals": lambda a, b: a == b,
    "stringLessThan": lambda a, b: a < b,
    "stringLessThanEquals": lambda a, b: a <= b,
    "stringGreaterThan": lambda a, b: a > b,
    "stringGreaterThanEquals": lambda a, b: a >= b,
}
NUMBER_OPS = {
    "numberEquals": lambda a, b: a == b,
    "numberLessThan": lambda a, b: a < b,
    "numberLessThanEquals": lambda a, b: a <= b,
    "numberGreaterThan": lambda a, b: a > b,
    "numberGreaterThanEquals": lambda a, b: a >= b,
}
HASH_OPS = {"fileMD5Equals": "md5", "fileSHA1Equals": "sha1", "fileSHA256Equals": "sha256",
            "fileSHA512Equals": "sha512"}
ONE_OPERAND = ("stringIsEmpty", "stringIsWhitespace", "binaryExists", "fileExists", "folderExists")
TWO_OPERAND = (*STRING_OPS, *NUMBER_OPS, "patternMatches")
LOGICAL = ("and", "or", "not")
OPERATORS = (*ONE_OPERAND, *TWO_OPERAND, *HASH_OPS, *LOGICAL)
STEP_ACTIONS = ("Execute", "Skip", "Abort")
MAX_DEPTH = 4
NUMBER = re.compile(r"^[-+]?([0-9]+[.])?[0-9]+$")

Problem = tuple[tuple[str | int, ...], str, bool]


def check(raw: Any, *, step_level: bool = True) -> list[Problem]:
    """Problems with an ``if`` mapping (or an Assert's inputs when ``step_level`` is false)."""
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        return [((), "condition must be a mapping with one operator", False)]
    if step_level:
        for key in ("then", "else"):
            if key in raw and raw[key] not in STEP_ACTIONS:
                problems.append(((key,), f"'{key}' must be one of Execute, Skip, Abort", False))
        raw = {key: value for key, value in raw.items() if key not in ("then", "else")}
    problems.extend(_check_expression(raw, (), 1))
    return problems


def _check_expression(raw: Any, path: tuple[str | int, ...], depth: int) -> list[Problem]:
    if not isinstance(raw, dict):
        return [(path, "expected a mapping with one operator", False)]
    operators = [key for key in raw if key in OPERATORS]
    if len(operators) != 1:
        found = ", ".join(operators) if operators else "none"
        return [(path, f"expected exactly one operator, found {found}", False)]
    op = operators[0]
    allowed = {op}
    if op in TWO_OPERAND:
        allowed.add("value")
    if op in HASH_OPS:
        allowed.add("path")
    problems: list[Problem] = [
        ((*path, key), f"unknown key '{key}' in '{op}' expression", True) for key in raw if key not in allowed
    ]
    for needed in allowed - {op}:
        if needed not in raw:
            problems.append((path, f"'{op}' needs '{needed}'", False))
    if op in LOGICAL:
        if depth >= MAX_DEPTH:
            return [*problems, ((*path, op), f"conditions nest deeper than {MAX_DEPTH} levels", False)]
        inner = raw[op]
        if op == "not":
            problems.extend(_check_expression(inner, (*path, op), depth + 1))
        elif not isinstance(inner, list) or not inner:
            problems.append(((*path, op), f"'{op}' needs a list of expressions", False))
        else:
            for index, item in enumerate(inner):
                problems.extend(_check_expression(item, (*path, op, index), depth + 1))
    elif isinstance(raw[op], dict | list):
        problems.append(((*path, op), f"'{op}' takes a single value", False))
    return problems


def decide(raw: dict[str, Any], resolve: Callable[[Any], Any], executor: Executor) -> str:
    """The step action (Execute, Skip or Abort) an ``if`` mapping chooses."""
    expression = {key: value for key, value in raw.items() if key not in ("then", "else")}
    if evaluate(expression, resolve, executor):
        return raw.get("then", "Execute")
    return raw.get("else", "Skip")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    text = _text(value).strip()
    if not NUMBER.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def evaluate(raw: dict[str, Any], resolve: Callable[[Any], Any], executor: Executor) -> bool:
    """Evaluate one operator expression; ``resolve`` expands references in operand values."""
    op = next(key for key in raw if key in OPERATORS)
    if op == "and":
        return all(evaluate(item, resolve, executor) for item in raw[op])
    if op == "or":
        return any(evaluate(item, resolve, executor) for item in raw[op])
    if op == "not":
        return not evaluate(raw[op], resolve, executor)
    operand = resolve(raw[op])
    if op == "stringIsEmpty":
        return _text(operand) == ""
    if op == "stringIsWhitespace":
        text = _text(operand)
        return text != "" and text.strip() == ""
    if op == "fileExists":
        return executor.host_path(_text(operand)).is_file()
    if op == "folderExists":
        return executor.host_path(_text(operand)).is_dir()
    if op == "binaryExists":
        probe = ["sh", "-c", 'command -v -- "$1" >/dev/null', "sh", _text(operand)]
        return executor.run(probe).exit_code == 0
    if op in HASH_OPS:
        target = executor.host_path(_text(resolve(raw["path"])))
        if not target.is_file():
            return False
        digest = hashlib.new(HASH_OPS[op], target.read_bytes()).hexdigest()
        return digest.lower() == _text(operand).strip().lower()
    value = resolve(raw["value"])
    if op in STRING_OPS:
        return STRING_OPS[op](_text(value).lower(), _text(operand).lower())
    if op in NUMBER_OPS:
        left, right = _number(value), _number(operand)
        return left is not None and right is not None and NUMBER_OPS[op](left, right)
    # patternMatches: Go RE2 syntax is close to Python's for the common subset
    try:
        return re.search(_text(operand), _text(value), re.IGNORECASE) is not None
    except re.error:
        return False
