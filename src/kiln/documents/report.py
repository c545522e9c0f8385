"""Run records and the files ``awstoe run`` leaves behind.

Layout (AWSTOE's): ``<log-directory>/TOE_<YYYY-MM-DD_HH-MM-SS>_UTC-0_<executionId>/`` holding
``console.log`` (all output), ``application.log`` (timestamped engine log), ``detailedoutput.json``
(the structured result, AWSTOE's field names), ``chaining.json`` (resolved step inputs and outputs),
``document.yaml`` (the input; ``document-<n>.yaml`` for several), and per-step console logs under
``<documentName>/<phase>/<stepName>.log``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiln.errors import Conflict

SUCCESS, FAILED, SKIPPED, IGNORED = "success", "failed", "skipped", "ignored"


def now() -> datetime:
    return datetime.now(UTC)


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") if value else None


@dataclass
class StepRecord:
    name: str
    action: str
    timeout_seconds: int
    on_failure: str
    max_attempts: int
    status: str = SUCCESS
    failure_message: str = ""
    inputs: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    loop: dict[str, Any] | None = None
    detailed_output: list[Any] | None = None
    attempts: int = 0
    reboots: int = 0
    start: datetime = field(default_factory=now)
    end: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "failureMessage": self.failure_message,
            "timeoutSeconds": self.timeout_seconds,
            "onFailure": self.on_failure,
            "maxAttempts": self.max_attempts,
            "action": self.action,
            "startTime": _time(self.start),
            "endTime": _time(self.end),
            "inputs": json.dumps(self.inputs, default=str),
            "outputs": json.dumps(self.outputs, default=str),
            "loop": self.loop,
            "detailedOutput": self.detailed_output,
            "attempts": self.attempts,
            "reboots": self.reboots,
        }


@dataclass
class PhaseRecord:
    name: str
    status: str = SUCCESS
    failure_message: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    start: datetime = field(default_factory=now)
    end: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "status": self.status, "startTime": _time(self.start),
            "endTime": _time(self.end), "failureMessage": self.failure_message,
            "steps": [step.to_dict() for step in self.steps],
        }


@dataclass
class DocumentRecord:
    name: str
    file_path: str
    description: str = ""
    status: str = SUCCESS
    failure_message: str = ""
    phases: list[PhaseRecord] = field(default_factory=list)
    start: datetime = field(default_factory=now)
    end: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "filePath": self.file_path, "status": self.status,
            "description": self.description, "startTime": _time(self.start), "endTime": _time(self.end),
            "failureMessage": self.failure_message, "phases": [phase.to_dict() for phase in self.phases],
        }


@dataclass
class Execution:
    """The result of one run: what ``detailedoutput.json`` holds."""

    execution_id: str
    status: str = SUCCESS
    failure_message: str = ""
    documents: list[DocumentRecord] = field(default_factory=list)
    log_url: str = ""
    start: datetime = field(default_factory=now)
    end: datetime | None = None

    def steps(self) -> list[StepRecord]:
        return [s for d in self.documents for p in d.phases for s in p.steps]

    def counts(self) -> dict[str, int]:
        steps = self.steps()
        return {
            "executedStepCount": sum(step.status != SKIPPED for step in steps),
            "failedStepCount": sum(step.status == FAILED for step in steps),
            "ignoredFailedStepCount": sum(step.status == IGNORED for step in steps),
            "skippedStepCount": sum(step.status == SKIPPED for step in steps),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "executionId": self.execution_id, "status": self.status,
            "failureMessage": self.failure_message, "logUrl": self.log_url, **self.counts(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "executionId": self.execution_id, "status": self.status, "startTime": _time(self.start),
            "endTime": _time(self.end), "failureMessage": self.failure_message, "logUrl": self.log_url,
            **self.counts(), "documents": [document.to_dict() for document in self.documents],
        }


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def log_limits() -> tuple[int, int]:
    """(per step, per run) byte limits of the logs: ``KILN_STEP_LOG_LIMIT`` / ``KILN_RUN_LOG_LIMIT``
    (bytes), by default 100 MiB and 1 GiB."""
    import os

    def read(name: str, default: int) -> int:
        raw = os.environ.get(name, "")
        return int(raw) if raw.isdigit() and int(raw) > 0 else default

    return read("KILN_STEP_LOG_LIMIT", STEP_LOG_LIMIT), read("KILN_RUN_LOG_LIMIT", RUN_LOG_LIMIT)


STEP_LOG_LIMIT = 100 * 1024 * 1024
RUN_LOG_LIMIT = 1024 * 1024 * 1024


class RunLog:
    """The ``TOE_…`` folder of one run and its log files.

    A step's output goes to its own log and to ``console.log``; a step's log stops at the step limit
    and ``console.log`` at the run limit (``log_limits``), each with one line saying so: the step
    goes on, its output is still read (and its tail kept for ``outputs.stdout``)."""

    def __init__(self, log_directory: str | Path, execution_id: str, started: datetime | None = None) -> None:
        stamp = (started or now()).strftime("%Y-%m-%d_%H-%M-%S")
        self.folder = Path(log_directory) / f"TOE_{stamp}_UTC-0_{execution_id}"
        try:
            self.folder.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise Conflict(f"log folder {self.folder} already exists",
                           hint="use another --execution-id or wait a second") from None
        self._lock = threading.Lock()
        self._console = open(self.folder / "console.log", "a", encoding="utf-8")  # noqa: SIM115
        self._application = open(self.folder / "application.log", "a", encoding="utf-8")  # noqa: SIM115
        self._documents = 0
        self.step_limit, self.run_limit = log_limits()
        self._console_bytes = 0
        self._console_full = False

    def application(self, message: str) -> None:
        with self._lock:
            self._application.write(f"{_time(now())} {message}\n")
            self._application.flush()

    def save_document(self, text: str, count: int) -> None:
        self._documents += 1
        name = "document.yaml" if count == 1 else f"document-{self._documents}.yaml"
        (self.folder / name).write_text(text, encoding="utf-8")

    def step_log_path(self, document: str, phase: str, step: str) -> Path:
        return self.folder / _safe(document or "document") / _safe(phase) / f"{_safe(step)}.log"

    def step_sink(
        self, document: str, phase: str, step: str
    ) -> tuple[Callable[[str], None], Callable[[], None]]:
        """A sink writing each line to console.log and the step's own log, and its closer."""
        path = self.step_log_path(document, phase, step)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a", encoding="utf-8")  # noqa: SIM115
        written = 0
        full = False

        def sink(line: str) -> None:
            nonlocal written, full
            text = line + "\n"
            size = len(text.encode("utf-8", "replace"))
            with self._lock:
                if not full:
                    if written + size > self.step_limit:
                        full = True
                        handle.write(f"[kiln: this step's log reached its limit of {self.step_limit} bytes; "
                                     "the rest of its output is not written]\n")
                    else:
                        handle.write(text)
                        written += size
                if not self._console_full:
                    if self._console_bytes + size > self.run_limit:
                        self._console_full = True
                        self._console.write(f"[kiln: console.log reached its limit of {self.run_limit} bytes; "
                                            "the rest of the run's output is not written]\n")
                    else:
                        self._console.write(text)
                        self._console_bytes += size

        def close() -> None:
            with self._lock:
                handle.close()
                self._console.flush()

        return sink, close

    def finish(self, execution: Execution, chaining: dict[str, Any]) -> Path:
        execution.log_url = str(self.folder)
        output = self.folder / "detailedoutput.json"
        output.write_text(json.dumps(execution.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        (self.folder / "chaining.json").write_text(
            json.dumps(chaining, indent=2, default=str) + "\n", encoding="utf-8"
        )
        return output

    def close(self) -> None:
        with self._lock:
            self._console.close()
            self._application.close()
