"""What the resource layer needs from a component document: validity, declared parameters, type.

Full validation belongs to ``kiln.documents.validate``; until that lands, a structural check of
AWSTOE's top level (schemaVersion, phases with named steps) stands in for it.
"""

from __future__ import annotations

from typing import Any

import yaml

from kiln.errors import InvalidInput, KilnError

STAGE_PHASES = ("build", "validate", "test")
PARAMETER_TYPES = {"string": "String", "integer": "Integer", "boolean": "Boolean", "stringlist": "StringList"}


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise InvalidInput(f"component document is not valid YAML{line}: {problem}", location=where) from None
    if not isinstance(document, dict):
        raise InvalidInput("component document must be a YAML mapping", location=where)
    return document


def _structural_check(document: dict[str, Any], where: str) -> None:
    if "schemaVersion" not in document:
        raise InvalidInput(
            "component document has no schemaVersion", location=where, hint="add schemaVersion: 1.0"
        )
    if str(document["schemaVersion"]) != "1.0":
        raise InvalidInput(
            f"unsupported schemaVersion {document['schemaVersion']!r}",
            location=where,
            hint="AWSTOE documents use schemaVersion: 1.0",
        )
    phases = document.get("phases")
    if not isinstance(phases, list) or not phases:
        raise InvalidInput("component document needs a non-empty phases list", location=where)
    for index, phase in enumerate(phases):
        if not isinstance(phase, dict) or not phase.get("name") or not isinstance(phase.get("steps"), list):
            raise InvalidInput(
                "each phase needs a name and a steps list", location=f"{where}: phases[{index}]"
            )
        for number, step in enumerate(phase["steps"]):
            if not isinstance(step, dict) or not step.get("name") or not step.get("action"):
                raise InvalidInput(
                    "each step needs a name and an action",
                    location=f"{where}: phases[{index}].steps[{number}]",
                )


def _engine_validate(text: str, where: str) -> bool:
    """Run kiln's AWSTOE validator when it is installed; False when it is not (yet)."""
    try:
        from kiln.documents import validate as validator  # type: ignore[attr-defined]
    except ImportError:
        return False
    function = (
        validator
        if callable(validator)
        else (getattr(validator, "validate_document", None) or getattr(validator, "validate", None))
    )
    if function is None:
        return False
    try:
        outcome = function(text)
    except KilnError as error:
        raise InvalidInput(
            error.message, location=f"{where}: {error.location}" if error.location else where, hint=error.hint
        ) from None
    # Accept either style of validator: one that raises, or one that returns its problems.
    problems = getattr(outcome, "errors", outcome)
    if outcome is False or (isinstance(problems, list | tuple) and problems):
        first = problems[0] if isinstance(problems, list | tuple) and problems else "invalid document"
        raise InvalidInput(str(first), location=where)
    return True


def analyse_document(text: str, *, where: str = "data") -> dict[str, Any]:
    """Validate the document and return it parsed."""
    document = _parse(text, where)
    if not _engine_validate(text, where):
        _structural_check(document, where)
    phase_names = {phase.get("name") for phase in document.get("phases") or [] if isinstance(phase, dict)}
    if not phase_names & set(STAGE_PHASES):
        raise InvalidInput(
            f"component document has no build, validate or test phase "
            f"(has: {', '.join(sorted(map(str, phase_names)))})",
            location=where,
            hint="Image Builder runs only the build, validate and test phases",
        )
    return document


def component_type(document: dict[str, Any]) -> str:
    """TEST when the document has only a test phase, else BUILD."""
    names = {phase.get("name") for phase in document.get("phases") or [] if isinstance(phase, dict)}
    return "TEST" if names == {"test"} else "BUILD"


def declared_parameters(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's parameters as Image Builder's ComponentParameterDetail list."""
    details: list[dict[str, Any]] = []
    for entry in document.get("parameters") or []:
        if not isinstance(entry, dict):
            continue
        for name, spec in entry.items():
            spec = spec if isinstance(spec, dict) else {}
            kind = str(spec.get("type", "string"))
            detail: dict[str, Any] = {"name": str(name), "type": PARAMETER_TYPES.get(kind.lower(), kind)}
            if "default" in spec:
                default = spec["default"]
                detail["defaultValue"] = (
                    [str(v) for v in default] if isinstance(default, list) else [str(default)]
                )
            if spec.get("description"):
                detail["description"] = str(spec["description"])
            details.append(detail)
    return details
