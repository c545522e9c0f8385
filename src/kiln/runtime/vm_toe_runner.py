"""kiln's AWSTOE runner inside a VM guest: one component document run by kiln's own engine
(``kiln.documents``) on the guest itself, as ``awstoe run`` would run it there.

:mod:`kiln.runtime.vm_guest_exec` copies this file into the guest beside ``lib/`` (kiln's documents
package and its libraries) and runs it with the guest's ``python3`` without site packages
(``python3 -S -E kiln_toe_runner.py REQUEST.json``: the standard library and ``lib/`` only). The
request names the document, phases, parameters, working directory and the log folder; progress lines
go to stdout as they happen (the host streams them into the build's log), the outcome to
``<log folder>/kiln-result.json``. Imports nothing of kiln but ``kiln.documents`` (and
``kiln.errors``), which is all the guest has.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULT_FILE = "kiln-result.json"


def run(request: dict) -> dict:  # type: ignore[type-arg]
    """Run the request's document; ``{"ok": bool, "message": str}``."""
    from kiln.documents.host import HostExecutor
    from kiln.documents.model import DocumentInvalid
    from kiln.documents.run import document_from_text, run_documents

    try:
        parsed = document_from_text(request["document"], request["name"])
    except DocumentInvalid as invalid:
        return {"ok": False, "message": "; ".join(str(issue) for issue in invalid.issues) or "document does not parse"}
    execution, _ = run_documents(
        [parsed], executor=HostExecutor(), log_directory=request["log_dir"], execution_id=request["name"],
        phases=request["phases"], parameters=request["parameters"], cwd=request["cwd"],
        progress=lambda line: print(line, flush=True),
    )
    if execution.status == "success":
        return {"ok": True, "message": ""}
    return {"ok": False, "message": execution.failure_message or "a step failed"}


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    log_dir = Path(request["log_dir"])
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = run(request)
    except Exception as error:  # a wrong parameter value, a broken engine: the step fails saying so
        result = {"ok": False, "message": f"{type(error).__name__}: {error}"}
    (log_dir / RESULT_FILE).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
    sys.exit(main(sys.argv[1]))
