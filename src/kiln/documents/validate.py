"""Parse and validate AWSTOE documents, collecting every error as ``FILE:LINE:COLUMN: message``.

Nothing runs until a document validates. Step inputs are checked against each action's pydantic
model; a value holding a ``{{ }}`` reference whose type cannot be known yet is checked after it
is resolved, at run time (see :func:`model_inputs`).
"""

from __future__ import annotations

import re
from pathlib import Path as FsPath
from typing import Any, get_args

from pydantic import BaseModel, RootModel, ValidationError

from kiln.documents import conditions, loops
from kiln.documents.actions.base import Action, ActionFailed
from kiln.documents.actions.catalog import lookup
from kiln.documents.expressions import CONTEXT_KEYS, Reference, has_expression, references
from kiln.documents.model import (
    DEFAULT_TIMEOUT,
    ON_FAILURE,
    PHASE_NAMES,
    Document,
    DocumentInvalid,
    Issue,
    Parameter,
    Phase,
    Step,
)
from kiln.documents.yamlload import Loaded, Path, YamlError, load

# ``version``: informational in published documents (the component's version is its semanticVersion)
TOP_KEYS = ("name", "description", "schemaVersion", "version", "parameters", "constants", "phases")
PARAMETER_KEYS = ("type", "default", "description", "allowedValues")
STEP_KEYS = ("name", "action", "inputs", "onFailure", "maxAttempts", "timeoutSeconds", "loop", "if")
PARAMETER_TYPES = ("string", "integer", "boolean")
VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_-]{3,128}$")
STEP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    def __init__(self, file: str, loaded: Loaded, platform: str | None) -> None:
        self.file = file
        self.loaded = loaded
        # None: the document is checked for every platform's actions (its component's platform was
        # checked when it was created); the run fails a step whose action the instance cannot run.
        self.platform = platform.lower() if platform else None
        self.issues: list[Issue] = []
        self._names: dict[int, set[str]] = {}

    def error(self, path: Path, message: str, *, key: bool = False) -> None:
        line, column = self.loaded.position(path, key=key)
        self.issues.append(Issue(self.file, line, column, message))

    # top level -----------------------------------------------------------------------------
    def document(self) -> Document:
        data: dict[str, Any] = self.loaded.data
        doc = Document(file=self.file, loaded=self.loaded)
        for key in data:
            if key not in TOP_KEYS:
                self.error((key,), f"unknown key '{key}'", key=True)
        if isinstance(data.get("version"), dict | list):
            self.error(("version",), "'version' must be a string or a number")
        for key in ("name", "description"):
            if key in data:
                if isinstance(data[key], str):
                    setattr(doc, key, data[key])
                else:
                    self.error((key,), f"'{key}' must be a string")
        if "schemaVersion" not in data:
            self.error((), "missing required key 'schemaVersion'")
        elif str(data["schemaVersion"]) not in ("1.0", "1"):
            self.error(("schemaVersion",), f"unsupported schemaVersion '{data['schemaVersion']}' (only 1.0)")
        doc.parameters = self.parameters(data.get("parameters"))
        doc.constants = self.constants(data.get("constants"))
        names = [parameter.name for parameter in doc.parameters]
        for name in doc.constants:
            if name in names:
                self.error(("constants",), f"'{name}' is both a parameter and a constant")
        if "phases" not in data:
            self.error((), "missing required key 'phases'")
        else:
            doc.phases = self.phases(data["phases"], doc)
        return doc

    def _declarations(self, raw: Any, key: str) -> list[tuple[int, str, Any]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.error((key,), f"'{key}' must be a list of single-key mappings")
            return []
        found: list[tuple[int, str, Any]] = []
        seen: set[str] = set()
        for index, item in enumerate(raw):
            if not isinstance(item, dict) or len(item) != 1:
                self.error((key, index), f"each entry of '{key}' must be a mapping with one name")
                continue
            name, spec = next(iter(item.items()))
            if not VARIABLE_NAME.match(name):
                self.error((key, index, name), f"name '{name}' must be 3-128 letters, digits, '-' or '_'",
                           key=True)
            if name in seen:
                self.error((key, index, name), f"duplicate name '{name}' in '{key}'", key=True)
            seen.add(name)
            if not isinstance(spec, dict):
                self.error((key, index, name), f"'{name}' must be a mapping with 'type'")
                continue
            found.append((index, name, spec))
        return found

    def parameters(self, raw: Any) -> list[Parameter]:
        result = []
        for index, name, spec in self._declarations(raw, "parameters"):
            path: Path = ("parameters", index, name)
            for key in spec:
                if key not in PARAMETER_KEYS:
                    self.error((*path, key), f"unknown key '{key}' in parameter '{name}'", key=True)
            kind = str(spec.get("type", "")).lower()
            if "type" not in spec:
                self.error(path, f"parameter '{name}' needs a 'type'")
            elif kind not in PARAMETER_TYPES:
                self.error((*path, "type"), f"parameter type must be string, integer or boolean, not "
                                            f"'{spec['type']}'")
            parameter = Parameter(name, kind or "string", description=str(spec.get("description", "")))
            if "allowedValues" in spec:
                parameter.allowed_values = self.allowed_values(spec["allowedValues"], kind, (*path, "allowedValues"))
            if "default" in spec:
                parameter.has_default = True
                try:
                    parameter.default = coerce(kind, spec["default"]) if kind in PARAMETER_TYPES else None
                    if not has_expression(parameter.default):
                        parameter.check_allowed(parameter.default)
                except ValueError as error:
                    self.error((*path, "default"), f"default of '{name}': {error}")
            result.append(parameter)
        return result

    def allowed_values(self, raw: Any, kind: str, path: Path) -> list[Any] | None:
        if not isinstance(raw, list) or not raw:
            self.error(path, "'allowedValues' must be a non-empty list")
            return None
        values = []
        for index, value in enumerate(raw):
            try:
                values.append(coerce(kind, value) if kind in PARAMETER_TYPES else value)
            except ValueError as error:
                self.error((*path, index), f"allowed value {error}")
        return values

    def constants(self, raw: Any) -> dict[str, Any]:
        result = {}
        for index, name, spec in self._declarations(raw, "constants"):
            path: Path = ("constants", index, name)
            for key in spec:
                if key not in ("type", "value"):
                    self.error((*path, key), f"unknown key '{key}' in constant '{name}'", key=True)
            if str(spec.get("type", "")).lower() != "string":
                where = (*path, "type") if "type" in spec else path
                self.error(where, f"constant '{name}' needs type string")
            if "value" not in spec:
                self.error(path, f"constant '{name}' needs a 'value'")
            elif isinstance(spec["value"], dict | list):
                self.error((*path, "value"), f"constant '{name}' must be a string")
            else:
                result[name] = _text(spec["value"])
        return result

    # phases and steps ----------------------------------------------------------------------
    def phases(self, raw: Any, doc: Document) -> list[Phase]:
        if not isinstance(raw, list) or not raw:
            self.error(("phases",), "'phases' must be a non-empty list")
            return []
        phases: list[Phase] = []
        for index, item in enumerate(raw):
            path: Path = ("phases", index)
            if not isinstance(item, dict):
                self.error(path, "a phase must be a mapping with 'name' and 'steps'")
                continue
            for key in item:
                if key not in ("name", "steps"):
                    self.error((*path, key), f"unknown key '{key}' in phase", key=True)
            name = item.get("name")
            if not isinstance(name, str) or not STEP_NAME.match(name):
                self.error((*path, "name") if "name" in item else path, "phase needs a 'name'")
                continue
            if any(phase.name == name for phase in phases):
                self.error((*path, "name"), f"duplicate phase name '{name}'")
                continue
            steps_raw = item.get("steps")
            if not isinstance(steps_raw, list) or not steps_raw:
                where = (*path, "steps") if "steps" in item else path
                self.error(where, f"phase '{name}' needs a list of steps")
                steps_raw = []
            phase = Phase(name)
            for position, step_raw in enumerate(steps_raw):
                step = self.step(step_raw, (*path, "steps", position), phase)
                if step is not None:
                    phase.steps.append(step)
            phases.append(phase)
        if phases and not any(phase.name in PHASE_NAMES for phase in phases):
            self.error(("phases",), "a document needs at least one of the phases build, validate, test")
        doc.phases = phases
        self.references(doc)
        return phases

    def step(self, raw: Any, path: Path, phase: Phase) -> Step | None:
        if not isinstance(raw, dict):
            self.error(path, "a step must be a mapping")
            return None
        for key in raw:
            if key not in STEP_KEYS:
                self.error((*path, key), f"unknown step key '{key}'", key=True)
        name, action_name = raw.get("name"), raw.get("action")
        if not isinstance(name, str) or not STEP_NAME.match(name):
            self.error((*path, "name") if "name" in raw else path,
                       "step needs a 'name' of 1-128 letters, digits, '-' or '_'")
            name = None
        elif name in self._names.setdefault(id(phase), {s.name for s in phase.steps}):
            self.error((*path, "name"), f"duplicate step name '{name}' in phase '{phase.name}'")
        step = Step(name=name or "", action=str(action_name or ""), inputs=raw.get("inputs"), path=path)
        self.step_settings(raw, path, step)
        action = self.action(raw, path)
        if action is not None and action.name == "ExecuteDocument":
            if raw.get("timeoutSeconds", -1) != -1:
                self.error((*path, "timeoutSeconds"), "ExecuteDocument requires timeoutSeconds -1")
            if raw.get("maxAttempts", 1) != 1:
                self.error((*path, "maxAttempts"), "ExecuteDocument requires maxAttempts 1")
            step.timeout_seconds = -1
        if "loop" in raw:
            problems = loops.check(raw["loop"])
            for rel, message, key in problems:
                self.error((*path, "loop", *rel), message, key=key)
            if not problems:
                step.loop = loops.parse(raw["loop"])
                others = [s.loop.name for s in phase.steps if s.loop and s.loop.name]
                if step.loop.name and step.loop.name in others:
                    self.error((*path, "loop", "name"), f"duplicate loop name '{step.loop.name}'")
        if "if" in raw:
            problems = conditions.check(raw["if"])
            for rel, message, key in problems:
                self.error((*path, "if", *rel), message, key=key)
            if not problems:
                step.condition = raw["if"]
        if action is not None and (self.platform is None or action.supports(self.platform)):
            for rel, message, key in input_problems(action, raw.get("inputs"), self.platform):
                self.error((*path, "inputs", *rel), message, key=key)
        if name:
            self._names.setdefault(id(phase), set()).add(name)
        return step if name else None

    def step_settings(self, raw: dict[str, Any], path: Path, step: Step) -> None:
        if "onFailure" in raw:
            if raw["onFailure"] in ON_FAILURE:
                step.on_failure = raw["onFailure"]
            else:
                self.error((*path, "onFailure"), "onFailure must be Abort, Continue or Ignore")
        if "maxAttempts" in raw:
            if _is_int(raw["maxAttempts"]) and raw["maxAttempts"] >= 1:
                step.max_attempts = raw["maxAttempts"]
            else:
                self.error((*path, "maxAttempts"), "maxAttempts must be an integer of at least 1")
        step.timeout_seconds = DEFAULT_TIMEOUT
        if "timeoutSeconds" in raw:
            value = raw["timeoutSeconds"]
            if _is_int(value) and (value == -1 or value > 0):
                step.timeout_seconds = value
            else:
                self.error((*path, "timeoutSeconds"), "timeoutSeconds must be a positive integer or -1")

    def action(self, raw: dict[str, Any], path: Path) -> type[Action] | None:
        name = raw.get("action")
        if not isinstance(name, str) or not name:
            self.error(path, "step needs an 'action'")
            return None
        action = lookup(name)
        if action is None:
            self.error((*path, "action"), f"unknown action '{name}'")
            return None
        if self.platform is not None and not action.supports(self.platform):
            message = f"action '{name}' is {action.only_on()}; it cannot run on {self.platform}"
            self.error((*path, "action"), message)
        return action

    # references ----------------------------------------------------------------------------
    def references(self, doc: Document) -> None:
        variables = {parameter.name for parameter in doc.parameters} | set(doc.constants)
        every = {(phase.name, step.name): step for phase in doc.phases for step in phase.steps}
        earlier: set[tuple[str, str]] = set()
        for phase in doc.phases:
            for step in phase.steps:
                places: list[tuple[Path, Any]] = []
                places.extend(_strings(step.inputs, (*step.path, "inputs")))
                if step.loop is not None:
                    places.extend(_strings(step.loop.raw.get("forEach"), (*step.path, "loop", "forEach")))
                places.extend(_strings(step.condition, (*step.path, "if")))
                for path, text in places:
                    for ref in references(text):
                        message = self.reference(ref, step, variables, every, earlier)
                        if message:
                            self.error(path, message)
                earlier.add((phase.name, step.name))

    def reference(self, ref: Reference, step: Step, variables: set[str],
                  every: dict[tuple[str, str], Step], earlier: set[tuple[str, str]]) -> str | None:
        if ref.kind == "variable" and ref.name not in variables:
            return f"reference to undefined parameter or constant '{ref.name}'"
        if ref.kind == "loop" and ref.name != "loop" and (step.loop is None or step.loop.name != ref.name):
            return f"reference to undefined loop '{ref.name}'"
        if ref.kind == "context" and ref.name not in CONTEXT_KEYS:
            return f"unknown context variable '{ref.name}'"
        if ref.kind == "imds" and ref.name.startswith(("iam/", "identity-credentials/")):
            return f"instance metadata path '{ref.name}' is not allowed"
        if ref.kind == "unknown":
            return f"cannot understand reference '{{{{ {ref.text} }}}}'"
        if ref.kind == "chain":
            key = (ref.phase, ref.step)
            if key not in every:
                return f"reference to undefined step '{ref.phase}.{ref.step}'"
            if key not in earlier:
                return f"step '{ref.phase}.{ref.step}' does not run before this step"
            target = lookup(every[key].action)
            declared = getattr(target, "outputs", None) if target else None
            if ref.io == "outputs" and declared is not None and ref.field and ref.field not in declared:
                return f"action {every[key].action} has no output '{ref.field}'"
        return None


def _strings(value: Any, path: Path) -> list[tuple[Path, str]]:
    if isinstance(value, str):
        return [(path, value)] if "{{" in value else []
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _strings(item, (*path, index))]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _strings(item, (*path, key))]
    return []


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def coerce(kind: str, value: Any) -> Any:
    """A parameter value of AWSTOE type ``kind`` (string, integer, boolean); ValueError if wrong."""
    if kind == "integer":
        if _is_int(value):
            return value
        if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+", value.strip()):
            return int(value)
        raise ValueError(f"'{value}' is not an integer")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"'{value}' is not a boolean (true or false)")
    if isinstance(value, dict | list):
        raise ValueError("must be a string")
    return _text(value)


# inputs ------------------------------------------------------------------------------------
def _empty_inputs(model: type[BaseModel]) -> Any:
    return [] if issubclass(model, RootModel) else {}


def _walk(data: Any, loc: tuple[Any, ...]) -> tuple[tuple[str | int, ...], Any]:
    """The longest prefix of a pydantic ``loc`` that exists in ``data``, and the value there."""
    real: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        else:
            break
        real.append(part)
    return tuple(real), node


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "inputs"


def _unsupported(action: type[Action], data: Any, platform: str | None) -> list[tuple[Path, str, bool]]:
    """Inputs AWSTOE refuses on ``platform`` (owner/group/permissions of CreateFile on Windows)."""
    names = action.unsupported_inputs.get(platform or "", ())
    items = list(enumerate(data)) if isinstance(data, list) else [(None, data)]
    problems: list[tuple[Path, str, bool]] = []
    for index, item in items:
        for name in names:
            if isinstance(item, dict) and name in item:
                where: Path = (name,) if index is None else (index, name)
                problems.append((where, f"{action.name}: input '{_dotted(where)}' is not supported on "
                                        f"{platform}", True))
    return problems


def _item_fields(model: type[BaseModel]) -> dict[str, Any]:
    """The input names of a mapping-shaped model, or of the items of a list-shaped one."""
    if issubclass(model, RootModel):
        for arg in get_args(model.model_fields["root"].annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return dict(arg.model_fields)
        return {}
    return dict(model.model_fields)


def _instead(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """A hint for an input AWSTOE documents on other actions: ``force`` where ``overwrite`` is meant."""
    if loc and loc[-1] == "force" and "overwrite" in _item_fields(model):
        return " (this action takes 'overwrite'; 'force' belongs to CreateSymlink and DeleteFolder)"
    return ""


def input_problems(action: type[Action], inputs: Any,
                   platform: str | None = None) -> list[tuple[Path, str, bool]]:
    """Static problems with a step's inputs; type errors on ``{{ }}`` values wait for run time."""
    model = action.inputs
    data = _empty_inputs(model) if inputs is None else inputs
    unsupported = _unsupported(action, data, platform)
    if unsupported:
        return unsupported
    try:
        model.model_validate(data, context={"platform": platform})
    except ValidationError as error:
        problems: list[tuple[Path, str, bool]] = []
        for item in error.errors():
            loc = tuple(item["loc"])
            real, node = _walk(data, loc)
            kind = item["type"]
            if kind == "missing":
                problems.append((real, f"{action.name}: missing required input '{_dotted(loc)}'", False))
            elif kind == "extra_forbidden":
                problems.append((real, f"{action.name}: unknown input '{_dotted(loc)}'" + _instead(model, loc),
                                 True))
            elif not has_expression(node):
                problems.append((real, f"{action.name}: input '{_dotted(real)}': {item['msg']}", False))
        return problems
    return []


def model_inputs(action: type[Action], resolved: Any, platform: str = "linux") -> BaseModel:
    """The action's inputs model built from resolved inputs for a run on ``platform``; ActionFailed
    if they don't fit."""
    model = action.inputs
    try:
        return model.model_validate(_empty_inputs(model) if resolved is None else resolved,
                                    context={"platform": platform.lower()})
    except ValidationError as error:
        parts = [f"{_dotted(tuple(item['loc']))}: {item['msg']}" for item in error.errors()]
        raise ActionFailed(f"invalid inputs for {action.name}: " + "; ".join(parts)) from None


# entry points ------------------------------------------------------------------------------
def parse(text: str | bytes, file: str = "<document>", *,
          platform: str | None = "Linux") -> tuple[Document | None, list[Issue]]:
    """Parse and validate one document against ``platform`` (Linux, Windows, macOS; None: any);
    returns the document (None if unusable) and every issue."""
    try:
        loaded = load(text)
    except YamlError as error:
        return None, [Issue(file, error.line, error.column, error.message)]
    checker = _Checker(file, loaded, platform)
    doc = checker.document()
    doc.text = text.decode() if isinstance(text, bytes) else text
    return doc, sorted(checker.issues, key=lambda issue: (issue.line, issue.column))


def read(path: str | FsPath) -> bytes:
    from kiln.documents.yamlload import MAX_BYTES

    with open(path, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    return data


def load_document(path: str | FsPath, *, platform: str = "Linux") -> Document:
    """Read and validate one document file; :class:`DocumentInvalid` lists every error."""
    doc, issues = parse(read(path), str(path), platform=platform)
    if issues or doc is None:
        raise DocumentInvalid(issues)
    return doc


def validate_files(paths: list[str], *, platform: str = "Linux") -> list[Issue]:
    """Every issue in every file (a missing file is one issue)."""
    issues: list[Issue] = []
    for path in paths:
        try:
            data = read(path)
        except OSError as error:
            issues.append(Issue(path, 1, 1, f"cannot read document: {error.strerror or error}"))
            continue
        issues.extend(parse(data, path, platform=platform)[1])
    return issues
