"""The action interface: one small module per AWSTOE action (family), registered by name.

An action declares its ``inputs`` as a pydantic model (``extra="forbid"``, AWSTOE's field names) and
implements :meth:`Action.execute`. The engine resolves ``{{ }}`` expressions, validates inputs
against the model, and never special-cases an action.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from kiln.documents.actions.scalars import coerce_fields
from kiln.documents.executor import Executor

LINUX, WINDOWS, MACOS = "linux", "windows", "macos"
POSIX = frozenset({LINUX, MACOS})


class Inputs(BaseModel):
    """Base for mapping-shaped inputs. List-shaped inputs use ``pydantic.RootModel``.

    Scalars given where AWSTOE documents a string are read as AWSTOE reads them (see
    :mod:`kiln.documents.actions.scalars`): ``expectedBucketOwner: 123456789022`` is the string
    ``"123456789022"``; a list or mapping where a string is documented is still refused.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _strings_as_awstoe_reads_them(cls, data: Any) -> Any:
        return coerce_fields(cls, data)


class ActionFailed(Exception):
    """The step failed; the message becomes the step's ``failureMessage``."""


@dataclass
class StepContext:
    executor: Executor
    step_name: str
    phase: str
    document_name: str
    timeout: float | None = None
    console: Callable[[str], None] = lambda line: None
    document_dir: Path | None = None
    # set by the engine for ExecuteDocument: run(document_path_or_text, parameters) -> outputs
    run_document: Callable[..., Mapping[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActionResult:
    outputs: dict[str, Any] = field(default_factory=dict)
    reboot_requested: bool = False


class Action:
    name: ClassVar[str]
    inputs: ClassVar[type[BaseModel]]
    # The platforms AWSTOE runs the action on (lower case). A document is validated against the
    # platform its component declares; running an action elsewhere fails its step at run time.
    platforms: ClassVar[frozenset[str]] = frozenset({LINUX, WINDOWS, MACOS})
    # Inputs AWSTOE refuses on some platform: {platform: {input name: why}} (checked per item).
    unsupported_inputs: ClassVar[dict[str, tuple[str, ...]]] = {}

    @classmethod
    def supports(cls, platform: str) -> bool:
        return platform.lower() in cls.platforms

    @classmethod
    def only_on(cls) -> str:
        """'Windows-only' / 'Linux-only' for messages."""
        return "Windows-only" if cls.platforms == {WINDOWS} else "Linux-only"

    def execute(self, inputs: Any, context: StepContext) -> ActionResult:
        raise NotImplementedError


REGISTRY: dict[str, type[Action]] = {}


def register(cls: type[Action]) -> type[Action]:
    if cls.name in REGISTRY:
        raise RuntimeError(f"action {cls.name} registered twice")
    REGISTRY[cls.name] = cls
    return cls
