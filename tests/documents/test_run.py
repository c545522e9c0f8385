"""One AWSTOE run sequence (documents/run.py) for ``kiln component run``, builds and the demo."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

from kiln.documents.engine import Engine
from kiln.documents.host import HostExecutor
from kiln.documents.model import DocumentInvalid
from kiln.documents.run import document_from_text, run_documents
from kiln.errors import InvalidInput

SRC = Path(__file__).resolve().parents[2] / "src" / "kiln"

DOC = """
schemaVersion: 1.0
name: greet
parameters:
  - Who: {type: string}
phases:
  - name: build
    steps:
      - name: Hello
        action: ExecuteBash
        inputs: {commands: ['echo "hello {{ Who }}"']}
  - name: test
    steps:
      - name: Never
        action: ExecuteBash
        inputs: {commands: ['exit 1']}
"""


def test_a_run_leaves_awstoes_log_folder(tmp_path: Path) -> None:
    document = document_from_text(DOC, "greet.yaml")
    execution, detailed = run_documents([document], executor=HostExecutor(), log_directory=tmp_path / "logs",
                                        execution_id="run-1", phases=["build"], parameters={"Who": "kiln"})
    assert execution.status == "success"
    [folder] = (tmp_path / "logs").iterdir()
    assert folder.name.startswith("TOE_") and folder.name.endswith("_UTC-0_run-1")
    assert detailed == folder / "detailedoutput.json"
    assert {"console.log", "application.log", "chaining.json", "document.yaml"} <= {p.name for p in folder.iterdir()}
    assert (folder / "greet" / "build" / "Hello.log").read_text() == "hello kiln\n"
    steps = [s["name"] for d in json.loads(detailed.read_text())["documents"] for p in d["phases"] for s in p["steps"]]
    assert steps == ["Hello"]


def test_a_missing_parameter_stops_the_run_before_any_log(tmp_path: Path) -> None:
    document = document_from_text(DOC, "greet.yaml")
    with pytest.raises(InvalidInput, match="'Who' has no default"):
        run_documents([document], executor=HostExecutor(), log_directory=tmp_path / "logs", execution_id="run-2")
    assert not (tmp_path / "logs").exists()


def test_an_invalid_text_lists_its_issues() -> None:
    with pytest.raises(DocumentInvalid) as error:
        document_from_text("schemaVersion: 1.0\nphases: 3\n", "bad.yaml")
    assert error.value.issues


def test_the_sequence_is_written_once() -> None:
    """Only documents/run.py opens a run log and makes the top engine (through its ``engine`` parameter,
    :class:`Engine` or a subclass such as the VM guest's resuming one); the engine alone makes engines
    for nested documents."""
    makers: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("RunLog", "Engine"):
                makers.setdefault(node.func.id, set()).add(str(path.relative_to(SRC)))
    assert makers == {"RunLog": {"documents/run.py"}, "Engine": {"documents/engine.py"}}
    assert inspect.signature(run_documents).parameters["engine"].default is Engine
