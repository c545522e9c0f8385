from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.documents.engine import Engine
from kiln.documents.host import HostExecutor
from kiln.documents.report import Execution
from kiln.documents.validate import load_document


@pytest.fixture
def write_doc(tmp_path: Path) -> Callable[..., Path]:
    """Write a dedented YAML document into tmp_path and return its path."""

    def write(text: str, name: str = "doc.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


@pytest.fixture
def run_doc(write_doc: Callable[..., Path]) -> Callable[..., tuple[Execution, HostExecutor]]:
    """Validate and run one document on the host; returns the execution and the executor."""

    def run(text: str, **options: object) -> tuple[Execution, HostExecutor]:
        executor = HostExecutor()
        doc = load_document(write_doc(text))
        engine = Engine(executor, max_reboots=int(options.pop("max_reboots", 5)))
        return engine.run([doc], **options), executor  # type: ignore[arg-type]

    return run

