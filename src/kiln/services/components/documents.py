"""What the resource layer needs from a component document: validity, declared parameters, type.

Validation is the AWSTOE engine's (``kiln.documents.validate``), so a component kiln accepts is one
kiln can run.
"""

from __future__ import annotations

from typing import Any

import yaml

from kiln.errors import InvalidInput

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


def _engine_validate(text: str, where: str, platform: str) -> None:
    """Full AWSTOE validation against the component's platform; every problem is reported, each as
    ``FILE:LINE:COLUMN: message``."""
    from kiln.documents.validate import parse

    _, issues = parse(text, where, platform=platform)
    if issues:
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise InvalidInput(
            f"component document is invalid: {issues[0]}{more}",
            location=where,
            hint="\n".join(str(issue) for issue in issues[1:]) or None,
        )


def analyse_document(text: str, *, where: str = "data", platform: str = "Linux") -> dict[str, Any]:
    """Validate the document for ``platform`` (the component's) and return it parsed."""
    document = _parse(text, where)
    _engine_validate(text, where, platform)
    phase_names = {phase.get("name") for phase in document.get("phases") or [] if isinstance(phase, dict)}
    if not phase_names & set(STAGE_PHASES):
        raise InvalidInput(
            f"component document has no build, validate or test phase "
            f"(has: {', '.join(sorted(map(str, phase_names)))})",
            location=where,
            hint="Image Builder runs only the build, validate and test phases",
        )
    return document


OS_FAMILIES = {"Windows": ("Microsoft Windows",), "macOS": ("macOS",)}


def check_supported_os_versions(platform: str, versions: list[str] | None, where: str = "") -> None:
    """Each of ``supportedOsVersions`` must be an OS of the component's platform ("Microsoft Windows
    Server 2022" for Windows, "macOS 14" for macOS, any other name such as "Amazon Linux 2" for Linux)."""
    for index, version in enumerate(versions or []):
        family = next((name for name, prefixes in OS_FAMILIES.items()
                       if version.strip().lower().startswith(tuple(p.lower() for p in prefixes))), "Linux")
        if family != platform:
            raise InvalidInput(
                f"supportedOsVersions[{index}] {version!r} is a {family} operating system, but the "
                f"component's platform is {platform}",
                location=f"{where}supportedOsVersions[{index}]",
            )


def component_type(document: dict[str, Any]) -> str:
    """TEST when the document has only a test phase, else BUILD."""
    names = {phase.get("name") for phase in document.get("phases") or [] if isinstance(phase, dict)}
    return "TEST" if names == {"test"} else "BUILD"


def _text(value: Any) -> str:
    """A default as the document means it: YAML's ``false``, not Python's ``False``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
                    [_text(v) for v in default] if isinstance(default, list) else [_text(default)]
                )
            if spec.get("description"):
                detail["description"] = str(spec["description"])
            details.append(detail)
    return details
