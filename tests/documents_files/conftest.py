from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from files_toe import Run, document

from kiln.documents.engine import Engine
from kiln.documents.executor import Executor
from kiln.documents.host import HostExecutor
from kiln.documents.validate import load_document, validate_files


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
