"""A parsed AWSTOE component document: parameters, constants, phases, steps, loops."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiln.documents.yamlload import Loaded, Path

PHASE_NAMES = ("build", "validate", "test")
ON_FAILURE = ("Abort", "Continue", "Ignore")
DEFAULT_TIMEOUT = 7200


@dataclass(frozen=True)
class Issue:
    """One validation error, printed as ``FILE:LINE:COLUMN: message``."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


@dataclass
class Parameter:
    name: str
    type: str  # string | integer | boolean
    default: Any = None
    has_default: bool = False
    description: str = ""
    # allowedValues: the values a caller may give (each of the parameter's type); None: any
    allowed_values: list[Any] | None = None

    def check_allowed(self, value: Any) -> None:
        """ValueError if ``value`` is not one of ``allowedValues``."""
        if self.allowed_values is not None and value not in self.allowed_values:
            shown = ", ".join(_shown(v) for v in self.allowed_values)
            raise ValueError(f"'{_shown(value)}' is not one of the allowed values ({shown})")


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Loop:
    name: str | None = None
    # for: (start, end, updateBy); forEach: a list, or a delimited string
    range: tuple[int, int, int] | None = None
    items: list[Any] | None = None
    delimited: str | None = None
    delimiter: str = ","
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Step:
    name: str
    action: str
    inputs: Any = None
    on_failure: str = "Abort"
    max_attempts: int = 1
    timeout_seconds: int = DEFAULT_TIMEOUT
    loop: Loop | None = None
    condition: dict[str, Any] | None = None
    path: Path = ()


@dataclass
class Phase:
    name: str
    steps: list[Step] = field(default_factory=list)


@dataclass
class Document:
    file: str
    name: str = ""
    description: str = ""
    schema_version: str = "1.0"
    parameters: list[Parameter] = field(default_factory=list)
    constants: dict[str, Any] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    text: str = ""
    loaded: Loaded | None = None

    def phase(self, name: str) -> Phase | None:
        return next((phase for phase in self.phases if phase.name == name), None)


class DocumentInvalid(Exception):
    """Validation found errors; ``issues`` lists every one of them."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("\n".join(str(issue) for issue in issues))
        self.issues = issues
