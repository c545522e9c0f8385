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

from pydantic import BaseModel, ConfigDict

from kiln.documents.executor import Executor


class Inputs(BaseModel):
    """Base for mapping-shaped inputs. List-shaped inputs use ``pydantic.RootModel``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


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
    # Windows-only actions are known (so validation names them) but refused on Linux.
    windows_only: ClassVar[bool] = False

    def execute(self, inputs: Any, context: StepContext) -> ActionResult:
        raise NotImplementedError


REGISTRY: dict[str, type[Action]] = {}


def register(cls: type[Action]) -> type[Action]:
    if cls.name in REGISTRY:
        raise RuntimeError(f"action {cls.name} registered twice")
    REGISTRY[cls.name] = cls
    return cls
