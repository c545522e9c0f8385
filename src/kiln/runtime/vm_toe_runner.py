"""kiln's AWSTOE runner inside a VM guest: one component document run by kiln's own engine
(``kiln.documents``) on the guest itself, as ``awstoe run`` would run it there.

:mod:`kiln.runtime.vm_guest_exec` copies this file into the guest beside ``lib/`` (kiln's documents
package and its libraries) and runs it with the guest's ``python3`` without site packages
(``python3 -S -E kiln_toe_runner.py REQUEST.json``: the standard library and ``lib/`` only). The
request names the document, phases, parameters, working directory and the log folder; progress lines
go to stdout as they happen (the host streams them into the build's log), the outcome to
``<log folder>/kiln-result.json``. Imports nothing of kiln but ``kiln.documents`` (and
``kiln.errors``), which is all the guest has. The S3 steps reach S3 through the host's S3 relay
(``kiln.documents.s3_relay_client``): the guest holds no credentials and no boto3.

A reboot (the ``Reboot`` action, or ``ExecuteBash`` exiting 194) ends the run as AWSTOE's does: the
file systems are synced and the outcome is ``{"reboot": STATE}``, STATE saying which steps are done
(their status and outputs) and which step asked, with its reboot count. The host reboots the guest and
runs the document again with ``"resume": STATE`` in the request: the steps done are not run again (their
outputs still feed later steps), the step that asked runs again knowing it rebooted (a ``Reboot`` step
is then done; a script sees its own marker files), and the rest follow.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

RESULT_FILE = "kiln-result.json"
BOOT_ID = "/proc/sys/kernel/random/boot_id"


class RebootRequested(BaseException):
    """A step asked for a reboot: the run stops here and resumes after it. A BaseException, so that it
    passes the engine's catch-all around an action (ExecuteDocument runs a nested document's steps in
    its own action, and a nested step may ask)."""


def boot_id() -> str:
    try:
        return Path(BOOT_ID).read_text().strip()
    except OSError:
        return ""


def _engine_class() -> type:
    """The engine that skips what ran before a reboot (built on first use: the import is the guest's).

    A step is known by its key: ``(phase, step)`` in the document the runner was given; in a document
    an ``ExecuteDocument`` step runs, the key of that step, which of its nested runs this is (a loop
    or a retry runs the same document again: another run of its steps), the nested document's path,
    then ``(phase, step)`` in it. A reboot asked for in a nested document resumes there, as in a sandbox
    (where the engine simply goes on after the reboot): the steps done before it, outer and nested,
    are not run again, the ``ExecuteDocument`` step runs its document again, which skips its steps done
    and runs the one that asked knowing it rebooted."""
    from kiln.documents.engine import MAX_REBOOTS, Engine
    from kiln.documents.report import StepRecord

    class ResumingEngine(Engine):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, resume: dict[str, Any] | None = None, shared: dict[str, Any] | None = None,
                     prefix: tuple[str, ...] = (), **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.prefix = prefix
            self.running: tuple[str, ...] = ()  # the key of this engine's step that runs now
            self.nested_runs = 0  # documents the running step has run so far (the same order every run)
            self.earlier_reboots = 0  # reboots the running step asked for in earlier runs
            if shared is None:  # the engine of the runner's document: the state every nested one shares
                resume = resume or {}
                done = list(resume.get("done", []))
                shared = {
                    "done": done,
                    "saved": {tuple(entry.get("key") or (entry["phase"], entry["step"])): entry for entry in done},
                    "at": tuple(resume["at"]) if resume.get("at") else None,
                    "reboots": int(resume.get("reboots", 0)),
                    "current": (), "current_reboots": 0,
                }
            self.shared = shared

        @property
        def done(self) -> list[dict[str, Any]]:
            return list(self.shared["done"])

        def _child_engine(self, document: str, **options: Any) -> Any:
            self.nested_runs += 1
            return ResumingEngine(self.executor, shared=self.shared,
                                  prefix=(*self.running, str(self.nested_runs), document), **options)

        def _run_step(self, doc: Any, phase: Any, step: Any, scope: Any) -> Any:
            key = (*self.prefix, phase.name, step.name)
            saved = self.shared["saved"].get(key)
            if saved is not None:  # ran before the reboot: its record and outputs, not run again
                if saved.get("chaining") is not None:
                    scope.steps.setdefault(phase.name, {})[step.name] = saved["chaining"]
                self.progress(f"  step {step.name} [{step.action}]: {saved['status']} (before the reboot)")
                return StepRecord(step.name, step.action, step.timeout_seconds, step.on_failure, step.max_attempts,
                                  status=saved["status"], failure_message=saved.get("failure_message", ""),
                                  reboots=int(saved.get("reboots", 0)))
            earlier = self.shared["reboots"] if key == self.shared["at"] else 0
            self.running, self.earlier_reboots, self.nested_runs = key, earlier, 0
            self.shared["current"], self.shared["current_reboots"] = key, earlier
            self.max_reboots = MAX_REBOOTS - earlier
            record = super()._run_step(doc, phase, step, scope)
            record.reboots += earlier  # the document's count, not this run's
            if record.failure_message == f"step requested more than {self.max_reboots} reboots":
                record.failure_message = f"step requested more than {MAX_REBOOTS} reboots"
            self.shared["done"].append({
                "key": list(key), "phase": phase.name, "step": step.name, "status": record.status,
                "failure_message": record.failure_message, "reboots": record.reboots,
                "chaining": scope.steps.get(phase.name, {}).get(step.name)})
            return record

        def _attempt(self, doc: Any, phase: Any, step: Any, scope: Any, reboots: int, sink: Any) -> Any:
            return super()._attempt(doc, phase, step, scope, reboots + self.earlier_reboots, sink)

        def reboot_state(self) -> dict[str, Any]:
            """Where to resume: the steps done, the step that asked and how often it has rebooted."""
            return {"done": self.shared["done"], "at": list(self.shared["current"]),
                    "reboots": self.shared["current_reboots"] + 1, "boot_id": boot_id()}

    return ResumingEngine


def _executor() -> Any:
    from kiln.documents.host import HostExecutor

    class GuestExecutor(HostExecutor):  # type: ignore[misc, valid-type]
        def reboot(self) -> None:
            raise RebootRequested()

        def s3_client(self, policy: Any) -> Any:
            """S3 through the host's relay, which holds the credentials and the build's network policy
            (``policy`` is this executor's own, the guest's: the host's is the one that counts)."""
            from kiln.documents.s3_relay_client import RelayS3

            return RelayS3()

    return GuestExecutor()


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Run the request's document; ``{"ok": bool, "message": str}``, or ``{"ok": False, "reboot":
    STATE}`` when a step asked for a reboot."""
    from kiln.documents.model import DocumentInvalid
    from kiln.documents.run import document_from_text, run_documents

    try:
        parsed = document_from_text(request["document"], request["name"])
    except DocumentInvalid as invalid:
        return {"ok": False, "message": "; ".join(str(issue) for issue in invalid.issues) or "document does not parse"}
    engines: list[Any] = []

    def resuming_engine(*args: Any, **kwargs: Any) -> Any:
        engines.append(_engine_class()(*args, resume=request.get("resume"), **kwargs))
        return engines[-1]

    try:
        execution, _ = run_documents(
            [parsed], executor=_executor(), log_directory=request["log_dir"], execution_id=request["name"],
            phases=request["phases"], parameters=request["parameters"], cwd=request["cwd"],
            progress=lambda line: print(line, flush=True), engine=resuming_engine,
        )
    except RebootRequested:
        os.sync()  # what the steps wrote is on disk before the reset
        return {"ok": False, "message": "", "reboot": engines[-1].reboot_state()}
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
    (log_dir / RESULT_FILE).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
    sys.exit(main(sys.argv[1]))
