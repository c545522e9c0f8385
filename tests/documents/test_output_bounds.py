"""A step that prints gigabytes: kiln's memory stays flat, the logs stop at their limits with a line
saying so, the build goes on, and ``outputs.stdout`` keeps the tail."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    def peak_kib():  # this process image's peak (ru_maxrss would carry the forking parent's over exec)
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    from pathlib import Path
    from kiln.documents.engine import Engine
    from kiln.documents.host import HostExecutor
    from kiln.documents.report import RunLog
    from kiln.documents.validate import load_document

    work = Path(sys.argv[1])
    doc = load_document(work / "doc.yaml")
    log = RunLog(work / "logs", "flood")
    engine = Engine(HostExecutor(), log=log)
    execution = engine.run([doc])
    log.finish(execution, engine.chaining)
    log.close()
    status = {s.name: s.status for s in execution.steps()}
    outputs = next(s for s in execution.steps() if s.name == "Flood").outputs
    stdout = (outputs[0] if isinstance(outputs, list) else outputs)["stdout"]
    print(json.dumps({"status": status, "peak_kib": peak_kib(),
                      "folder": str(log.folder), "head": stdout[:40], "tail": stdout[-12:],
                      "length": len(stdout)}))
""")

DOCUMENT = """\
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Flood
        action: ExecuteBash
        inputs:
          commands:
            - head -c 2000000000 /dev/zero | tr '\\0' x
            - echo
            - echo done
      - name: After
        action: ExecuteBash
        inputs:
          commands:
            - echo after
"""


@pytest.mark.slow
def test_two_gigabytes_of_output(tmp_path: Path) -> None:
    (tmp_path / "doc.yaml").write_text(DOCUMENT)
    env = {"KILN_STEP_LOG_LIMIT": str(10 * 1024 * 1024), "KILN_RUN_LOG_LIMIT": str(15 * 1024 * 1024)}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            env={**__import__("os").environ, **env}, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["status"] == {"Flood": "success", "After": "success"}
    assert report["peak_kib"] < 300 * 1024  # 2 GB went through; memory stayed flat
    folder = Path(report["folder"])
    step_log = next(folder.rglob("Flood.log"))
    assert step_log.stat().st_size <= 10 * 1024 * 1024 + 200
    assert step_log.read_text().splitlines()[-1].startswith("[kiln: this step's log reached its limit")
    console = (folder / "console.log").read_text()
    assert len(console.encode()) <= 15 * 1024 * 1024 + 400
    assert "[kiln: console.log reached its limit of 15728640 bytes" in console
    assert report["head"].startswith("[kiln: the first ")
    assert report["tail"] == "xxxxxxx\ndone"
    assert report["length"] < 1024 * 1024 + 100
