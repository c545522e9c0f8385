from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

GOOD = """
schemaVersion: 1.0
name: good
parameters:
  - Who: {type: string, default: world}
phases:
  - name: build
    steps:
      - name: Hello
        action: ExecuteBash
        inputs: {commands: ['echo "hello {{ Who }}"']}
  - name: test
    steps:
      - name: Check
        action: ExecuteBash
        inputs: {commands: ['test "{{ build.Hello.outputs.stdout }}" = "hello kiln"']}
"""


def test_validate_exit_codes_and_messages(kiln, write_doc: Callable[..., Path]) -> None:
    good = write_doc(GOOD, "good.yaml")
    bad = write_doc("schemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: A\n"
                    "        action: InstallMSI\n        inputs: {path: x.msi}\n", "bad.yaml")
    result = kiln("component", "validate", "--documents", str(good))
    assert result.exit_code == 0, result.stderr
    result = kiln("component", "validate", "--documents", f"{good},{bad}")
    assert result.exit_code == 1
    assert f"{bad}:6:17: action 'InstallMSI' is Windows-only; it cannot run on linux" in result.stderr
    result = kiln("component", "validate", "--documents", str(bad), "--output", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["errors"][0] == {
        "file": str(bad), "line": 6, "column": 17,
        "message": "action 'InstallMSI' is Windows-only; it cannot run on linux"}


def test_run_writes_awstoe_layout(kiln, write_doc: Callable[..., Path], tmp_path: Path) -> None:
    good = write_doc(GOOD, "good.yaml")
    logs = tmp_path / "logs"
    result = kiln("component", "run", "--documents", str(good), "--parameters", "Who=kiln",
                  "--log-directory", str(logs), "--execution-id", "run-1", "--output", "json")
    assert result.exit_code == 0, result.stderr
    assert "step Hello [ExecuteBash]: success" in result.stderr  # live progress on stderr
    output = json.loads(result.stdout)
    (folder,) = logs.iterdir()
    assert folder.name.startswith("TOE_") and folder.name.endswith("_UTC-0_run-1")
    assert {p.name for p in folder.iterdir()} >= {
        "console.log", "application.log", "detailedoutput.json", "chaining.json", "document.yaml", "good"}
    detailed = json.loads((folder / "detailedoutput.json").read_text())
    assert detailed == output
    assert (detailed["executionId"], detailed["status"]) == ("run-1", "success")
    assert (detailed["executedStepCount"], detailed["failedStepCount"]) == (2, 0)
    document = detailed["documents"][0]
    assert (document["name"], document["filePath"]) == ("good", str(good))
    assert [p["name"] for p in document["phases"]] == ["build", "test"]
    hello = document["phases"][0]["steps"][0]
    assert {"name", "action", "status", "failureMessage", "inputs", "outputs", "startTime", "endTime",
            "timeoutSeconds", "onFailure", "maxAttempts", "loop", "detailedOutput"} <= set(hello)
    assert json.loads(hello["inputs"]) == [{"commands": ['echo "hello kiln"']}]
    assert json.loads(hello["outputs"]) == [{"stdout": "hello kiln"}]
    assert (folder / "good" / "build" / "Hello.log").read_text() == "hello kiln\n"
    assert "hello kiln" in (folder / "console.log").read_text()
    chaining = json.loads((folder / "chaining.json").read_text())
    assert chaining["good"]["build"]["Hello"]["outputs"] == {"stdout": "hello kiln"}


def test_run_failures_exit_1(kiln, write_doc: Callable[..., Path], tmp_path: Path) -> None:
    good = write_doc(GOOD, "good.yaml")
    logs = tmp_path / "logs"
    # the default parameter makes the test phase fail
    result = kiln("component", "run", "-d", str(good), "-l", str(logs))
    assert result.exit_code == 1
    assert result.stdout.startswith("failed: 2 step(s) run, 1 failed")
    # only the build phase: success
    result = kiln("component", "run", "-d", str(good), "-l", str(logs), "--phases", "build")
    assert result.exit_code == 0, result.stderr
    # an invalid document: nothing runs, no log folder
    bad = write_doc("schemaVersion: 1.0\nphases: {}\n", "bad.yaml")
    before = set(logs.iterdir())
    result = kiln("component", "run", "-d", str(bad), "-l", str(logs))
    assert result.exit_code == 1
    assert f"{bad}:2:9: 'phases' must be a non-empty list" in result.stderr
    assert set(logs.iterdir()) == before
    result = kiln("component", "run", "-d", str(good), "-l", str(logs), "--parameters", "Who")
    assert result.exit_code != 0
    assert "must be NAME=VALUE" in result.stderr


def test_demo_runs_the_bash_document() -> None:
    from kiln.documents.demo import EXAMPLES, run_document_demo
    from kiln.documents.validate import validate_files

    lines: list[str] = []
    result = run_document_demo(EXAMPLES / "hello-bash.yaml", parameters={"Shout": "true"}, say=lines.append)
    assert result["status"] == "success"
    assert result["files"] == ["fruits.txt", "greeting.txt"]
    steps = {s["name"]: s for p in result["documents"][0]["phases"] for s in p["steps"]}
    assert json.loads(steps["Louder"]["outputs"]) == [{"stdout": "HELLO FROM LINUX"}]
    assert json.loads(steps["ListFruits"]["outputs"]) == [{"stdout": "0 apple\n1 banana\n2 cherry"}]
    assert any(line.startswith("outcome: success") for line in lines)
    assert validate_files([str(EXAMPLES / "hello-bash.yaml")]) == []


def test_demo_document_is_fully_valid() -> None:
    from kiln.documents.actions.catalog import lookup
    from kiln.documents.demo import EXAMPLES, FILE_ACTIONS, default_document
    from kiln.documents.validate import validate_files

    assert all(lookup(name) is not None for name in FILE_ACTIONS)
    assert validate_files([str(EXAMPLES / "hello-demo.yaml")]) == []
    assert default_document() == EXAMPLES / "hello-demo.yaml"
