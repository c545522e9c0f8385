from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiln.documents.engine import Engine
from kiln.documents.executor import Executor
from kiln.documents.host import HostExecutor
from kiln.documents.report import Execution, StepRecord
from kiln.documents.validate import load_document, validate_files

HEADER = """\
name: files-test
schemaVersion: 1.0
parameters:
  - Work:
      type: string
      description: The test's work folder.
phases:
  - name: build
    steps:
"""


@dataclass
class Run:
    execution: Execution
    steps: dict[str, StepRecord]
    console: list[str]

    def output(self, step: str, key: str) -> object:
        return self.steps[step].outputs[0][key]

    def failure(self, step: str) -> str:
        record = self.steps[step]
        assert record.status == "failed", f"{step} did not fail"
        return record.failure_message


def document(steps: str) -> str:
    return HEADER + textwrap.indent(textwrap.dedent(steps).strip("\n"), " " * 6) + "\n"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "w"
    folder.mkdir()
    return folder


@pytest.fixture
def toe(tmp_path: Path, work: Path) -> Callable[..., Run]:
    """Run a build phase made of ``steps`` (YAML) with ``{{ Work }}`` = the work folder."""

    def run(steps: str, executor: Executor | None = None, w: str | None = None, cwd: str | None = None) -> Run:
        path = tmp_path / "doc.yaml"
        path.write_text(document(steps))
        console: list[str] = []
        engine = Engine(executor or HostExecutor(), console=console.append, cwd=cwd)
        execution = engine.run([load_document(path)], parameters={"Work": w or str(work)})
        return Run(execution, {s.name: s for s in execution.steps()}, console)

    return run


@pytest.fixture
def problems(tmp_path: Path) -> Callable[[str], list[str]]:
    """Validation messages of a document made of ``steps``."""

    def check(steps: str) -> list[str]:
        path = tmp_path / "check.yaml"
        path.write_text(document(steps))
        return [issue.message for issue in validate_files([str(path)])]

    return check
