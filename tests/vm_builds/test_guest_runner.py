"""kiln's AWSTOE runner bundle, the one a VM build copies into its guest, run here without a VM by a
Python that has no site packages (``-S -E``, as in the guest): it is self-contained, runs the
document's phases with its parameters, prints the engine's progress lines and writes the outcome and
the TOE log folder; a failing step is the outcome's message."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from kiln.runtime import vm_guest_exec, vm_toe_runner

DOCUMENT = """
name: runner-check
schemaVersion: 1.0
parameters:
  - Target:
      type: string
phases:
  - name: build
    steps:
      - name: Write
        action: ExecuteBash
        inputs:
          commands:
            - echo written > {{ Target }}
  - name: validate
    steps:
      - name: Fails
        action: ExecuteBash
        inputs:
          commands:
            - exit 4
"""


def test_the_bundle_runs_a_document_with_the_standard_library_only(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    with tarfile.open(fileobj=io.BytesIO(vm_guest_exec.runner_bundle()), mode="r:gz") as archive:
        archive.extractall(bundle, filter="data")
    logs, target = tmp_path / "logs", tmp_path / "written.txt"
    request = {"document": DOCUMENT, "name": "runner-check-1.0.0", "phases": ["build", "validate"],
               "parameters": {"Target": str(target)}, "log_dir": str(logs), "cwd": str(tmp_path)}
    (tmp_path / "request.json").write_text(json.dumps(request))
    runner = [sys.executable, "-S", "-E", str(bundle / "kiln_toe_runner.py"), str(tmp_path / "request.json")]
    done = subprocess.run(runner, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "  step Write [ExecuteBash]: success" in done.stdout.splitlines(), done.stdout
    assert target.read_text() == "written\n"
    outcome = json.loads((logs / vm_toe_runner.RESULT_FILE).read_text())
    assert outcome == {"ok": False, "message": "step Fails failed: exit status 4"}, outcome
    assert list(logs.glob("TOE_*/detailedoutput.json")), list(logs.iterdir())
