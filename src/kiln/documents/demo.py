"""``kiln demo`` at the document stage: run an example component on the host, end to end."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.documents.actions.catalog import lookup

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "components"  # package data
FILE_ACTIONS = ("CreateFolder", "CreateFile", "ReadFile")


def default_document() -> Path:
    """hello-demo.yaml when the file-system actions are installed, else its bash-only twin."""
    if all(lookup(name) is not None for name in FILE_ACTIONS):
        return EXAMPLES / "hello-demo.yaml"
    return EXAMPLES / "hello-bash.yaml"


def run_document_demo(
    document: Path | None = None,
    *,
    parameters: dict[str, str] | None = None,
    say: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Validate and run ``document`` in a temporary directory; return the run's detailed output."""
    from kiln.documents.host import HostExecutor
    from kiln.documents.model import DocumentInvalid
    from kiln.documents.run import run_documents
    from kiln.documents.validate import load_document
    from kiln.errors import InvalidInput

    path = document or default_document()
    say(f"kiln demo: running component document {path.name} on this host")
    try:
        doc = load_document(path)
    except DocumentInvalid as error:
        raise InvalidInput(f"the demo document is invalid:\n{error}") from None
    with tempfile.TemporaryDirectory(prefix="kiln-demo-") as work:
        values = {"WorkDir": work, **(parameters or {})}
        execution, _ = run_documents([doc], executor=HostExecutor(), log_directory=Path(work) / "logs",
                                     execution_id="demo", parameters=values, progress=progress or say)
        site = Path(work) / "site"
        files = sorted(p.name for p in site.iterdir()) if site.is_dir() else []
        result = execution.to_dict()
        result["files"] = files
        counts = execution.counts()
        say(f"outcome: {execution.status} - {counts['executedStepCount']} steps run, "
            f"{counts['failedStepCount']} failed, {counts['skippedStepCount']} skipped")
        say(f"files written: {', '.join(files) or 'none'}")
        say("logs: TOE_<time>_UTC-0_demo/ with console.log, detailedoutput.json, per-step logs "
            "(removed with the temporary directory)")
    return result
