"""The reboot protocol of kiln's AWSTOE runner in a VM guest, run here without a VM (a Python without
site packages, as in the guest): a ``Reboot`` step and an ``ExecuteBash`` step exiting 194 each end the
run with the state to resume from; run again with that state, the steps done are not run again (their
outputs still resolve in later steps), the step that asked is done or runs again knowing it rebooted,
and the document finishes. A reboot asked for in a document an ExecuteDocument step runs resumes
inside that document. (The real reboot of a guest: tests/vm_builds/test_vm_build_kill.py.)"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from kiln.runtime import vm_guest_exec, vm_toe_runner

DOCUMENT = """
name: reboots
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Before
        action: ExecuteBash
        inputs:
          commands:
            - echo ran >> {{ Dir }}/before-runs
            - echo first-output
      - name: RebootNow
        action: Reboot
      - name: UsesBefore
        action: ExecuteBash
        inputs:
          commands:
            - echo "{{ build.Before.outputs.stdout }}" > {{ Dir }}/chained
      - name: AsksByExitCode
        action: ExecuteBash
        inputs:
          commands:
            - echo ran >> {{ Dir }}/asks-runs
            - if [ ! -e {{ Dir }}/asked ]; then touch {{ Dir }}/asked; exit 194; fi
  - name: validate
    steps:
      - name: Done
        action: ExecuteBash
        inputs:
          commands:
            - echo done > {{ Dir }}/done
parameters:
  - Dir:
      type: string
"""


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """The runner bundle the guest gets, unpacked."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    with tarfile.open(fileobj=io.BytesIO(vm_guest_exec.runner_bundle()), mode="r:gz") as archive:
        archive.extractall(folder, filter="data")
    return folder


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The document's working directory."""
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


def _run(bundle: Path, work: Path, number: int, resume: dict[str, Any] | None,
         document: str = DOCUMENT) -> dict[str, Any]:
    logs = work / f"logs-{number}"
    request = {"document": document, "name": "reboots-1.0.0", "phases": ["build", "validate"],
               "parameters": {"Dir": str(work)}, "log_dir": str(logs), "cwd": str(work), "resume": resume}
    (work / "request.json").write_text(json.dumps(request))
    runner = [sys.executable, "-S", "-E", str(bundle / "kiln_toe_runner.py"), str(work / "request.json")]
    done = subprocess.run(runner, capture_output=True, text=True, cwd=work, timeout=120)
    assert done.returncode == 0, done.stderr
    outcome: dict[str, Any] = json.loads((logs / vm_toe_runner.RESULT_FILE).read_text())
    outcome["progress"] = done.stdout.splitlines()
    return outcome


def test_a_reboot_ends_the_run_and_the_document_resumes_after_it(bundle: Path, work: Path) -> None:

    first = _run(bundle, work, 1, None)
    state = first["reboot"]
    assert state["at"] == ["build", "RebootNow"] and state["reboots"] == 1, state
    assert state["boot_id"] == Path(vm_toe_runner.BOOT_ID).read_text().strip()
    assert not (work / "chained").exists(), "nothing after the Reboot step ran"

    second = _run(bundle, work, 2, state)
    state = second["reboot"]
    assert state["at"] == ["build", "AsksByExitCode"] and state["reboots"] == 1, state
    assert "  step Before [ExecuteBash]: success (before the reboot)" in second["progress"], second["progress"]
    assert "  step RebootNow [Reboot]: success" in second["progress"], second["progress"]
    assert (work / "chained").read_text() == "first-output\n", "the output of a step before the reboot resolves"

    third = _run(bundle, work, 3, state)
    assert third["ok"] is True and "reboot" not in third, third
    assert (work / "before-runs").read_text() == "ran\n", "a step done before a reboot does not run again"
    assert (work / "asks-runs").read_text() == "ran\nran\n", "the step that exited 194 ran again after it"
    assert (work / "done").read_text() == "done\n"
    detailed = json.loads(next((work / "logs-3").glob("TOE_*/detailedoutput.json")).read_text())
    steps = {step["name"]: step for document in detailed["documents"] for phase in document["phases"]
             for step in phase["steps"]}
    # the last run's record is the whole document's: every step, each reboot counted once
    assert [steps[name]["status"] for name in ("Before", "RebootNow", "UsesBefore", "AsksByExitCode", "Done")] == [
        "success"] * 5, steps
    assert (steps["RebootNow"]["reboots"], steps["AsksByExitCode"]["reboots"], steps["Before"]["reboots"]) == (1, 1, 0)


def test_more_reboots_than_awstoe_allows_fail_the_step(bundle: Path, tmp_path: Path) -> None:
    """A step that keeps asking is failed after the engine's limit, counted across the reboots."""
    from kiln.documents.engine import MAX_REBOOTS

    document = DOCUMENT.replace("if [ ! -e {{ Dir }}/asked ]; then touch {{ Dir }}/asked; exit 194; fi", "exit 194")
    logs = tmp_path / "logs"
    done_before = [{"phase": "build", "step": name, "status": "success", "chaining": None}
                   for name in ("Before", "RebootNow", "UsesBefore")]
    resume = {"done": done_before, "at": ["build", "AsksByExitCode"], "reboots": MAX_REBOOTS}
    request = {"document": document, "name": "reboots-1.0.0", "phases": ["build"], "parameters": {"Dir": str(tmp_path)},
               "log_dir": str(logs), "cwd": str(tmp_path), "resume": resume}
    (tmp_path / "request.json").write_text(json.dumps(request))
    done = subprocess.run([sys.executable, "-S", "-E", str(bundle / "kiln_toe_runner.py"),
                           str(tmp_path / "request.json")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outcome = json.loads((logs / vm_toe_runner.RESULT_FILE).read_text())
    assert outcome["ok"] is False and "reboot" not in outcome, outcome
    assert outcome["message"] == f"step AsksByExitCode failed: step requested more than {MAX_REBOOTS} reboots", outcome
    assert (tmp_path / "asks-runs").read_text() == "ran\n", "it ran once more, then the limit stopped it"


NESTED = """
name: inner
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: InnerBefore
        action: ExecuteBash
        inputs:
          commands:
            - echo ran >> {dir}/inner-before
            - echo inner-output
      - name: InnerReboot
        action: Reboot
      - name: InnerAfter
        action: ExecuteBash
        inputs:
          commands:
            - echo "{{{{ build.InnerBefore.outputs.stdout }}}}" >> {dir}/inner-after
"""
OUTER = """
name: outer
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: OuterBefore
        action: ExecuteBash
        inputs:
          commands:
            - echo ran >> {{ Dir }}/outer-before
      - name: Nest
        action: ExecuteDocument
        inputs:
          document: '{{ Dir }}/inner.yaml'
      - name: NestAgain
        action: ExecuteDocument
        inputs:
          document: inner.yaml
      - name: OuterAfter
        action: ExecuteBash
        inputs:
          commands:
            - echo ran >> {{ Dir }}/outer-after
parameters:
  - Dir:
      type: string
"""


def test_a_reboot_in_a_nested_document_resumes_inside_it(bundle: Path, work: Path) -> None:
    """As in a sandbox, where the engine goes on after the reboot: the nested document's steps done are
    not run again, the one that asked is done, the rest of it and of the outer document follow. The
    same document run by another step is another run of its steps (keys carry the calling step)."""
    (work / "inner.yaml").write_text(NESTED.format(dir=work))
    first = _run(bundle, work, 1, None, OUTER)
    inner = str(work / "inner.yaml")
    assert first["reboot"]["at"] == ["build", "Nest", "1", inner, "build", "InnerReboot"], first
    assert not (work / "inner-after").exists()
    second = _run(bundle, work, 2, first["reboot"], OUTER)
    assert second["reboot"]["at"] == ["build", "NestAgain", "1", inner, "build", "InnerReboot"], second
    assert "  step InnerBefore [ExecuteBash]: success (before the reboot)" in second["progress"]
    assert "  step InnerReboot [Reboot]: success" in second["progress"], second["progress"]
    third = _run(bundle, work, 3, second["reboot"], OUTER)
    assert third["ok"] is True, third
    assert (work / "outer-before").read_text() == "ran\n", "the outer step before the reboot ran once"
    # each ExecuteDocument step ran the nested document's steps once, their outputs resolving after it
    assert (work / "inner-before").read_text() == "ran\nran\n"
    assert (work / "inner-after").read_text() == "inner-output\ninner-output\n"
    assert (work / "outer-after").read_text() == "ran\n"


OUTER_LOOP = """
name: outer-loop
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: NestEach
        action: ExecuteDocument
        loop:
          name: each
          forEach: [a, b]
        inputs:
          document: inner.yaml
parameters:
  - Dir:
      type: string
"""


def test_each_iteration_of_a_loop_runs_the_nested_document_anew(bundle: Path, work: Path) -> None:
    """A loop runs the same document once per iteration: a reboot in the second iteration resumes in
    that iteration's run, never taking the first iteration's steps for its own."""
    (work / "inner.yaml").write_text(NESTED.format(dir=work))
    inner = str(work / "inner.yaml")
    first = _run(bundle, work, 1, None, OUTER_LOOP)
    assert first["reboot"]["at"] == ["build", "NestEach", "1", inner, "build", "InnerReboot"], first
    second = _run(bundle, work, 2, first["reboot"], OUTER_LOOP)
    assert second["reboot"]["at"] == ["build", "NestEach", "2", inner, "build", "InnerReboot"], second
    third = _run(bundle, work, 3, second["reboot"], OUTER_LOOP)
    assert third["ok"] is True, third
    assert (work / "inner-before").read_text() == "ran\nran\n", "each iteration ran the nested steps once"
    assert (work / "inner-after").read_text() == "inner-output\ninner-output\n"


def test_a_resume_key_reads_as_the_step_and_where_it_runs() -> None:
    assert vm_guest_exec.step_named(["build", "RebootNow"]) == "build/RebootNow"
    assert vm_guest_exec.step_named(["build", "Nest", "1", "/d/inner.yaml", "build", "InnerReboot"]) == \
        "build/InnerReboot in /d/inner.yaml (from step build/Nest)"
    assert vm_guest_exec.step_named(["build", "Each", "2", "/d/a.yaml", "test", "Mid", "1", "/d/b.yaml", "test",
                                     "Deep"]) == \
        "test/Deep in /d/b.yaml (from step test/Mid) in /d/a.yaml (from step build/Each, run 2)"
