"""Workflow documents (schemaVersion 1.0): parse and validate, every problem as ``FILE:LINE:COLUMN``.

A document has ``name``, ``description``, ``schemaVersion``, ``parameters`` (name, type, default,
description), ``steps`` (name, action, description, onFailure, rollbackEnabled, timeoutSeconds, if,
inputs) and ``outputs`` (name, value). Validation checks each step's action against the catalogue
(:mod:`kiln.services.workflows.catalog`): the stage it may run in, its required and known inputs,
its timeout range; and every reference: a parameter the document declares, an output of an
*earlier* step whose action has it, a system variable Image Builder defines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kiln.documents.model import Issue
from kiln.documents.yamlload import Loaded, Path, YamlError, load
from kiln.errors import InvalidInput
from kiln.services.workflows.catalog import ACTIONS, SYSTEM_VARIABLES
from kiln.services.workflows.expressions import COMPARISONS, LOGICAL, ReferenceError_, embedded, parse_reference

TOP_KEYS = ("name", "description", "schemaVersion", "parameters", "steps", "outputs")
STEP_KEYS = ("name", "action", "description", "onFailure", "rollbackEnabled", "timeoutSeconds", "if", "inputs")
PARAMETER_TYPES = ("string", "integer", "boolean", "stringList")
STEP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{1,99}$")
PARAMETER_NAME = re.compile(r"^[^\x00]{1,128}$")
MAX_STEPS, MAX_OUTPUTS, MAX_PARAMETERS = 15, 25, 25


@dataclass(frozen=True)
class ParameterDecl:
    name: str
    type: str
    default: Any = None
    has_default: bool = False
    description: str | None = None


@dataclass(frozen=True)
class StepDecl:
    name: str
    action: str
    description: str | None = None
    on_failure: str = "Abort"
    rollback_enabled: Any = True
    timeout_seconds: int | None = None
    condition: dict[str, Any] | None = None
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkflowDocument:
    name: str | None
    description: str | None
    parameters: tuple[ParameterDecl, ...]
    steps: tuple[StepDecl, ...]
    outputs: tuple[tuple[str, str], ...]


class _Checker:
    def __init__(self, file: str, loaded: Loaded, workflow_type: str) -> None:
        self.file = file
        self.loaded = loaded
        self.type = workflow_type
        self.issues: list[Issue] = []
        self.parameters: dict[str, ParameterDecl] = {}
        self.earlier: dict[str, str] = {}  # step name -> action, of the steps before the one checked

    def error(self, path: Path, message: str, *, key: bool = False) -> None:
        line, column = self.loaded.position(path, key=key)
        self.issues.append(Issue(self.file, line, column, message))

    def document(self) -> WorkflowDocument | None:
        data = self.loaded.data
        for key in data:
            if key not in TOP_KEYS:
                self.error((key,), f"unknown key '{key}'", key=True)
        if "schemaVersion" not in data:
            self.error((), "missing required key 'schemaVersion'")
        elif str(data["schemaVersion"]) not in ("1.0", "1"):
            self.error(("schemaVersion",), f"unsupported schemaVersion '{data['schemaVersion']}' (only 1.0)")
        for key in ("name", "description"):
            if key in data and not isinstance(data[key], str):
                self.error((key,), f"'{key}' must be a string")
        parameters = self.declare_parameters(data.get("parameters"))
        steps = self.steps(data.get("steps"))
        outputs = self.outputs(data.get("outputs"))
        if self.issues:
            return None
        return WorkflowDocument(data.get("name"), data.get("description"), parameters, steps, outputs)

    # parameters ------------------------------------------------------------------------------
    def declare_parameters(self, raw: Any) -> tuple[ParameterDecl, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.error(("parameters",), "'parameters' must be a list")
            return ()
        if len(raw) > MAX_PARAMETERS:
            self.error(("parameters",), f"a workflow has at most {MAX_PARAMETERS} parameters")
        for index, item in enumerate(raw):
            path: Path = ("parameters", index)
            if not isinstance(item, dict):
                self.error(path, "a parameter must be a mapping with 'name' and 'type'")
                continue
            for key in item:
                if key not in ("name", "type", "default", "description"):
                    self.error((*path, key), f"unknown key '{key}' in parameter", key=True)
            name, kind = item.get("name"), item.get("type")
            if not isinstance(name, str) or not PARAMETER_NAME.match(name):
                self.error((*path, "name") if "name" in item else path, "parameter needs a 'name' (1-128 characters)")
                continue
            if name in self.parameters:
                self.error((*path, "name"), f"duplicate parameter '{name}'")
                continue
            if kind not in PARAMETER_TYPES:
                where = (*path, "type") if "type" in item else path
                self.error(where, f"parameter '{name}' type must be one of {', '.join(PARAMETER_TYPES)}"
                                  + (f", not '{kind}'" if kind is not None else ""))
                continue
            if "default" in item:
                problem = type_problem(kind, item["default"])
                if problem:
                    self.error((*path, "default"), f"default of '{name}': {problem}")
            self.parameters[name] = ParameterDecl(name, kind, item.get("default"), "default" in item,
                                                  item.get("description"))
        return tuple(self.parameters.values())

    # steps -----------------------------------------------------------------------------------
    def steps(self, raw: Any) -> tuple[StepDecl, ...]:
        if not isinstance(raw, list) or not raw:
            self.error(("steps",) if raw is not None else (), "'steps' must be a non-empty list"
                       if raw is not None else "missing required key 'steps'")
            return ()
        if len(raw) > MAX_STEPS:
            self.error(("steps",), f"a workflow has at most {MAX_STEPS} steps (has {len(raw)})")
        steps = []
        for index, item in enumerate(raw):
            step = self.step(item, ("steps", index))
            if step is not None:
                steps.append(step)
                self.earlier[step.name] = step.action
        return tuple(steps)

    def step(self, item: Any, path: Path) -> StepDecl | None:
        if not isinstance(item, dict):
            self.error(path, "a step must be a mapping with 'name', 'action' and 'inputs'")
            return None
        for key in item:
            if key not in STEP_KEYS:
                self.error((*path, key), f"unknown key '{key}' in step", key=True)
        name = item.get("name")
        if not isinstance(name, str) or not STEP_NAME.match(name):
            self.error((*path, "name") if "name" in item else path,
                       "step needs a 'name': a letter, then 1-99 letters, digits, '-' or '_'")
            return None
        if name in self.earlier:
            self.error((*path, "name"), f"duplicate step name '{name}'")
            return None
        action = item.get("action")
        spec = ACTIONS.get(action) if isinstance(action, str) else None
        if spec is None:
            known = ", ".join(sorted(ACTIONS))
            self.error((*path, "action") if "action" in item else path,
                       f"step '{name}': unknown action '{action}' (one of {known})" if action is not None
                       else f"step '{name}' needs an 'action'")
            return None
        if self.type not in spec.stages:
            self.error((*path, "action"), f"step '{name}': {action} cannot run in a {self.type} workflow "
                                          f"(only {', '.join(spec.stages)})")
        on_failure = item.get("onFailure", "Abort")
        if on_failure not in ("Abort", "Continue"):
            self.error((*path, "onFailure"), f"step '{name}': onFailure must be Abort or Continue")
        rollback = item.get("rollbackEnabled", True)
        if not isinstance(rollback, bool):
            if isinstance(rollback, str) and rollback.strip().startswith("$."):
                self.reference(rollback, (*path, "rollbackEnabled"))
            else:
                self.error((*path, "rollbackEnabled"), f"step '{name}': rollbackEnabled must be true, false or a "
                                                       "reference")
        timeout = item.get("timeoutSeconds")
        if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)
                                    or not 1 <= timeout <= spec.max_timeout):
            self.error((*path, "timeoutSeconds"),
                       f"step '{name}': timeoutSeconds of {action} must be a whole number of seconds from 1 to "
                       f"{spec.max_timeout} (default {spec.default_timeout})")
        if "description" in item and not isinstance(item["description"], str):
            self.error((*path, "description"), f"step '{name}': 'description' must be a string")
        condition = item.get("if")
        if condition is not None:
            self.condition(condition, (*path, "if"), 1)
        inputs = item.get("inputs", {})
        if not isinstance(inputs, dict):
            self.error((*path, "inputs"), f"step '{name}': 'inputs' must be a mapping")
            inputs = {}
        self.inputs(name, spec.name, inputs, (*path, "inputs"))
        return StepDecl(name, action, item.get("description"), on_failure, rollback, timeout,
                        condition if isinstance(condition, dict) else None, inputs)

    def inputs(self, step: str, action: str, inputs: dict[str, Any], path: Path) -> None:
        spec = ACTIONS[action]
        given = {key.removesuffix(".$") for key in inputs}
        for key, value in inputs.items():
            bare = key.removesuffix(".$")
            if bare not in spec.required + spec.optional:
                known = ", ".join(spec.required + spec.optional) or "none"
                self.error((*path, key), f"step '{step}': {action} has no input '{bare}' (inputs: {known})", key=True)
                continue
            if key.endswith(".$"):
                if not isinstance(value, str):
                    self.error((*path, key), f"step '{step}': '{key}' must be a reference such as "
                                             "$.stepOutputs.STEP.OUTPUT")
                else:
                    self.reference(value, (*path, key))
            else:
                self.embedded_references(value, (*path, key))
        for required in spec.required:
            if required not in given:
                self.error(path if inputs else path[:-1], f"step '{step}': {action} needs input '{required}'")

    def embedded_references(self, value: Any, path: Path) -> None:
        if isinstance(value, str):
            for text in embedded(value):
                self.reference(text, path)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key.endswith(".$") and isinstance(item, str):
                    self.reference(item, (*path, key))
                else:
                    self.embedded_references(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.embedded_references(item, (*path, index))

    def reference(self, text: str, path: Path) -> None:
        try:
            ref = parse_reference(text)
        except ReferenceError_ as error:
            self.error(path, str(error))
            return
        if ref.node == "parameters" and ref.first not in self.parameters:
            self.error(path, f"{text}: the workflow declares no parameter '{ref.first}'")
        elif ref.node == "imagebuilder" and ref.first not in SYSTEM_VARIABLES:
            self.error(path, f"{text}: '{ref.first}' is not an Image Builder system variable")
        elif ref.node == "stepOutputs":
            action = self.earlier.get(ref.first)
            if action is None:
                self.error(path, f"{text}: no step '{ref.first}' runs before this one")
            elif ref.second not in ACTIONS[action].outputs:
                outputs = ", ".join(ACTIONS[action].outputs) or "none"
                self.error(path, f"{text}: {action} step '{ref.first}' has no output '{ref.second}' "
                                 f"(outputs: {outputs})")

    def condition(self, raw: Any, path: Path, depth: int) -> None:
        if not isinstance(raw, dict):
            self.error(path, "a condition must be a mapping with one operator")
            return
        operators = [key for key in raw if key in LOGICAL or key in COMPARISONS]
        unknown = [key for key in raw if key not in LOGICAL and key not in COMPARISONS and key != "value"]
        for key in unknown:
            self.error((*path, key), f"unknown condition operator '{key}' (one of "
                                     f"{', '.join((*LOGICAL, *COMPARISONS))})", key=True)
        if len(operators) != 1:
            if not unknown:
                self.error(path, "a condition needs exactly one operator")
            return
        [operator] = operators
        if operator in ("and", "or"):
            parts = raw[operator]
            if not isinstance(parts, list) or not parts:
                self.error((*path, operator), f"'{operator}' takes a non-empty list of conditions")
                return
            for index, part in enumerate(parts):
                self.condition(part, (*path, operator, index), depth + 1)
        elif operator == "not":
            self.condition(raw["not"], (*path, "not"), depth + 1)
        else:
            if "value" not in raw:
                self.error(path, f"'{operator}' needs a 'value' to compare")
            elif isinstance(raw["value"], str) and raw["value"].strip().startswith("$."):
                self.reference(raw["value"], (*path, "value"))
            baseline = raw[operator]
            kind = COMPARISONS[operator]
            if kind == "boolean" and not isinstance(baseline, bool):
                self.error((*path, operator), f"'{operator}' takes true or false")
            if kind == "number" and (isinstance(baseline, bool) or not isinstance(baseline, int | float)):
                self.error((*path, operator), f"'{operator}' takes a number")

    # outputs -----------------------------------------------------------------------------------
    def outputs(self, raw: Any) -> tuple[tuple[str, str], ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.error(("outputs",), "'outputs' must be a list of name and value")
            return ()
        if len(raw) > MAX_OUTPUTS:
            self.error(("outputs",), f"a workflow has at most {MAX_OUTPUTS} outputs")
        found: list[tuple[str, str]] = []
        for index, item in enumerate(raw):
            path: Path = ("outputs", index)
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or \
                    not isinstance(item.get("value"), str):
                self.error(path, "an output needs a 'name' and a reference 'value'")
                continue
            for key in item:
                if key not in ("name", "value"):
                    self.error((*path, key), f"unknown key '{key}' in output", key=True)
            self.reference(item["value"], (*path, "value"))
            found.append((item["name"], item["value"]))
        return tuple(found)


def type_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` is not of a workflow parameter type (None: it is)."""
    if kind == "stringList":
        ok = isinstance(value, list) and all(isinstance(item, str | int | float) for item in value)
        return None if ok else "expected a list of strings"
    if kind == "boolean":
        return None if isinstance(value, bool) else "expected true or false"
    if kind == "integer":
        return None if isinstance(value, int) and not isinstance(value, bool) else "expected an integer"
    return None if isinstance(value, str | int | float) and not isinstance(value, bool) else "expected a string"


def check_document(text: str, *, workflow_type: str, where: str = "data") -> WorkflowDocument:
    """The validated document, or :class:`InvalidInput` naming every problem as ``FILE:LINE:COLUMN``."""
    try:
        loaded = load(text)
    except YamlError as error:
        issue = Issue(where, error.line, error.column, error.message)
        raise InvalidInput(f"workflow document is invalid: {issue}", location=where) from None
    checker = _Checker(where, loaded, workflow_type)
    document = checker.document()
    if document is None:
        issues = checker.issues
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise InvalidInput(
            f"workflow document is invalid: {issues[0]}{more}",
            location=where,
            hint="\n".join(str(issue) for issue in issues[1:]) or None,
        )
    return document


def declared_parameters(document: WorkflowDocument) -> list[dict[str, Any]]:
    """The document's parameters as Image Builder's WorkflowParameterDetail list."""
    details = []
    for parameter in document.parameters:
        detail: dict[str, Any] = {"name": parameter.name, "type": parameter.type}
        if parameter.has_default:
            default = parameter.default
            values = default if isinstance(default, list) else [default]
            detail["defaultValue"] = [("true" if v else "false") if isinstance(v, bool) else str(v) for v in values]
        if parameter.description:
            detail["description"] = parameter.description
        details.append(detail)
    return details
