"""Run validated documents against an executor, the way ``awstoe run`` does.

The engine is the one place that resolves ``{{ }}`` references, evaluates ``if``, expands loops,
builds each action's inputs model, retries, applies ``onFailure`` and handles reboot requests.
Actions only see their resolved inputs model and a :class:`StepContext`.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiln.documents import conditions, loops
from kiln.documents.actions.base import ActionFailed, StepContext
from kiln.documents.actions.catalog import lookup
from kiln.documents.executor import Executor
from kiln.documents.expressions import ExpressionError, Scope, resolve
from kiln.documents.model import Document, DocumentInvalid, Phase, Step
from kiln.documents.report import (
    FAILED,
    IGNORED,
    SKIPPED,
    DocumentRecord,
    Execution,
    PhaseRecord,
    RunLog,
    StepRecord,
)
from kiln.documents.validate import coerce, load_document, model_inputs
from kiln.errors import InvalidInput

MAX_REBOOTS = 5
MAX_NESTING = 3


def bind_parameters(doc: Document, overrides: dict[str, str]) -> dict[str, Any]:
    """Parameter values after overrides (unknown names are ignored, as awstoe does) plus constants."""
    values: dict[str, Any] = {}
    for parameter in doc.parameters:
        if parameter.name in overrides:
            try:
                values[parameter.name] = coerce(parameter.type, overrides[parameter.name])
                parameter.check_allowed(values[parameter.name])
            except ValueError as error:
                raise InvalidInput(f"parameter {parameter.name}: {error}", location=doc.file) from None
        elif parameter.has_default:
            values[parameter.name] = parameter.default
        else:
            raise InvalidInput(
                f"parameter '{parameter.name}' has no default and no value was given",
                location=doc.file, hint=f"pass --parameters {parameter.name}=VALUE",
            )
    values.update(doc.constants)
    return values


def _merge(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Loop outputs merged per key; strings (stdout) joined with newlines, as AWSTOE does."""
    if len(outputs) == 1:
        return outputs[0]
    merged: dict[str, list[Any]] = {}
    for output in outputs:
        for key, value in output.items():
            merged.setdefault(key, []).append(value)
    return {
        key: "\n".join(values) if all(isinstance(v, str) for v in values) else values
        for key, values in merged.items()
    }


class _Attempt:
    def __init__(self) -> None:
        self.ok = True
        self.reboot = False
        self.message = ""
        self.inputs: list[Any] = []
        self.outputs: list[dict[str, Any]] = []
        self.detail: list[Any] | None = None


class Engine:
    """Runs documents on one executor; ``progress`` gets one human line per step event."""

    def __init__(
        self,
        executor: Executor,
        *,
        log: RunLog | None = None,
        progress: Callable[[str], None] | None = None,
        console: Callable[[str], None] | None = None,
        max_reboots: int = MAX_REBOOTS,
        cwd: str | None = None,
        depth: int = 0,
        ancestors: tuple[str, ...] = (),
    ) -> None:
        self.executor = executor
        self.log = log
        self.progress = progress or (lambda line: None)
        self.console = console
        self.max_reboots = max_reboots
        self.cwd = cwd
        self.depth = depth
        self.ancestors = ancestors
        self.chaining: dict[str, Any] = {}
        self._os = executor.os_info()

    # documents and phases ------------------------------------------------------------------
    def run(
        self,
        documents: list[Document],
        *,
        phases: list[str] | None = None,
        parameters: dict[str, str] | None = None,
        execution_id: str | None = None,
        phase_major: bool = True,
    ) -> Execution:
        """Run the selected phases of every document; an ``Abort`` failure stops the whole run.

        Phases always run in document order, whatever order ``phases`` lists them in. With several
        documents each phase runs across the documents in the order given (build of every document,
        then validate of every document, ...); ``phase_major=False`` runs each document whole instead.
        """
        execution = Execution(execution_id or str(uuid.uuid4()))
        bound = [bind_parameters(doc, parameters or {}) for doc in documents]  # all checked first
        if self.log:
            for doc in documents:
                self.log.save_document(doc.text, len(documents))
        records = [DocumentRecord(doc.name, doc.file, doc.description) for doc in documents]
        scopes = [Scope(variables=variables, context=self._context(execution.execution_id), env=os.environ)
                  for variables in bound]
        for plan_index, phase in self._plan(documents, phases, phase_major):
            doc, record = documents[plan_index], records[plan_index]
            if record not in execution.documents:
                execution.documents.append(record)
                self._log(f"document {doc.name or doc.file}: start")
            phase_record = self._run_phase(doc, phase, scopes[plan_index])
            record.phases.append(phase_record)
            record.end = datetime.now(UTC)
            if phase_record.status == FAILED:
                record.status = FAILED
                record.failure_message = record.failure_message or phase_record.failure_message
                execution.status = FAILED
                execution.failure_message = execution.failure_message or record.failure_message
                if any(s.status == FAILED and s.on_failure == "Abort" for s in phase_record.steps):
                    break
        for doc, scope in zip(documents, scopes, strict=True):
            self.chaining[doc.name or doc.file] = scope.steps
        execution.end = datetime.now(UTC)
        return execution

    @staticmethod
    def _plan(documents: list[Document], phases: list[str] | None,
              phase_major: bool) -> list[tuple[int, Phase]]:
        """(document index, phase) pairs in the order they run."""
        chosen = [[p for p in doc.phases if phases is None or p.name in phases] for doc in documents]
        if not phase_major:
            return [(index, phase) for index, doc_phases in enumerate(chosen) for phase in doc_phases]
        names: list[str] = []
        for doc_phases in chosen:
            names.extend(p.name for p in doc_phases if p.name not in names)
        return [(index, phase) for name in names for index, doc_phases in enumerate(chosen)
                for phase in doc_phases if phase.name == name]

    def _context(self, execution_id: str) -> dict[str, str]:
        moment = datetime.now(UTC)
        return {
            "executionId": execution_id, "accountId": "", "region": "",
            "osPlatform": self._os.platform.lower(), "osName": self._os.id,
            "osVersion": self._os.version_id, "date": moment.strftime("%Y-%m-%d"),
            "dateTime": moment.isoformat(timespec="seconds"), "uuid": str(uuid.uuid4()),
            "hostname": socket.gethostname(), "phase": "", "step": "",
        }

    def _run_phase(self, doc: Document, phase: Phase, scope: Scope) -> PhaseRecord:
        record = PhaseRecord(phase.name)
        self.progress(f"[{doc.name or doc.file}] phase {phase.name}")
        scope.context["phase"] = phase.name
        for step in phase.steps:
            result = self._run_step(doc, phase, step, scope)
            record.steps.append(result)
            if result.status == FAILED:
                record.status = FAILED
                record.failure_message = record.failure_message or f"step {step.name} failed: " + (
                    result.failure_message
                )
                if step.on_failure == "Abort":
                    break
        record.end = datetime.now(UTC)
        return record

    # steps ---------------------------------------------------------------------------------
    def _run_step(self, doc: Document, phase: Phase, step: Step, scope: Scope) -> StepRecord:
        record = StepRecord(step.name, step.action, step.timeout_seconds, step.on_failure, step.max_attempts,
                            loop=step.loop.raw if step.loop else None)
        scope.context["step"] = step.name
        scope.loops = {}
        sink, close = (self.log.step_sink(doc.name, phase.name, step.name) if self.log else (None, None))
        try:
            self._execute_step(doc, phase, step, scope, record, sink)
        finally:
            if close:
                close()
        record.end = datetime.now(UTC)
        if record.status == FAILED and step.on_failure == "Ignore":
            record.status = IGNORED
        self._log(f"step {phase.name}.{step.name}: {record.status} {record.failure_message}".rstrip())
        shown = f" ({record.failure_message})" if record.failure_message else ""
        self.progress(f"  step {step.name} [{step.action}]: {record.status}{shown}")
        return record

    def _execute_step(self, doc: Document, phase: Phase, step: Step, scope: Scope, record: StepRecord,
                      sink: Callable[[str], None] | None) -> None:
        if step.condition is not None:
            try:
                decision = conditions.decide(step.condition, lambda v: resolve(v, scope), self.executor)
            except ExpressionError as error:
                record.status, record.failure_message = FAILED, f"if: {error}"
                return
            if decision == "Skip":
                record.status = SKIPPED
                return
            if decision == "Abort":
                record.status, record.failure_message = FAILED, "the step's if condition chose Abort"
                return
        attempt = _Attempt()
        while True:
            for number in range(1, step.max_attempts + 1):
                record.attempts += 1
                if number > 1:
                    self.progress(f"  step {step.name}: attempt {number} of {step.max_attempts}")
                attempt = self._attempt(doc, phase, step, scope, record.reboots, sink)
                if attempt.ok or attempt.reboot:
                    break
            if not attempt.reboot:
                break
            if record.reboots >= self.max_reboots:
                attempt.ok, attempt.message = False, f"step requested more than {self.max_reboots} reboots"
                break
            record.reboots += 1
            self.progress(f"  step {step.name}: requested a reboot ({record.reboots} of at most "
                          f"{self.max_reboots}); the step runs again after it")
            self._log(f"step {phase.name}.{step.name}: reboot {record.reboots}")
            self.executor.reboot()
        record.inputs, record.outputs, record.detailed_output = attempt.inputs, [], attempt.detail
        if attempt.ok:
            merged = _merge(attempt.outputs) if attempt.outputs else {}
            record.outputs = [merged] if merged else []
            inputs = attempt.inputs[0] if len(attempt.inputs) == 1 else attempt.inputs
            scope.steps.setdefault(phase.name, {})[step.name] = {"inputs": inputs, "outputs": merged}
        else:
            record.status, record.failure_message = FAILED, attempt.message

    def _attempt(self, doc: Document, phase: Phase, step: Step, scope: Scope, reboots: int,
                 sink: Callable[[str], None] | None) -> _Attempt:
        attempt = _Attempt()
        action = lookup(step.action)
        if action is None:  # validation prevents this; kept for documents built in code
            attempt.ok, attempt.message = False, f"unknown action '{step.action}'"
            return attempt
        if not action.supports(self._os.platform):
            running = " ".join(part for part in (self._os.id, self._os.version_id) if part) or "unknown"
            attempt.ok, attempt.message = False, (
                f"action {step.action} is {action.only_on()} and this instance runs {self._os.platform} "
                f"({running})")
            return attempt
        started = time.monotonic()
        limit = None if step.timeout_seconds == -1 else float(step.timeout_seconds)
        try:
            iterations = loops.iterations(step.loop, lambda v: resolve(v, scope)) if step.loop else [None]
        except ExpressionError as error:
            attempt.ok, attempt.message = False, f"loop: {error}"
            return attempt
        failed: list[str] = []
        for item in iterations:
            if item is not None:
                scope.loops = {"loop": item}
                if step.loop and step.loop.name:
                    scope.loops[step.loop.name] = item
            remaining = None if limit is None else limit - (time.monotonic() - started)
            if remaining is not None and remaining <= 0:
                failed.append("the step timed out")
                break
            context = StepContext(
                executor=self.executor, step_name=step.name, phase=phase.name, document_name=doc.name,
                timeout=remaining, console=self._sink(sink), document_dir=Path(doc.file).parent,
                run_document=lambda document, parameters, phases=None: self._nested(doc, document,
                                                                                     parameters, phases),
                extra={"reboots": reboots, "cwd": self.cwd},
            )
            try:
                resolved = resolve(step.inputs, scope)
                attempt.inputs.extend(resolved if isinstance(resolved, list) else [resolved])
                result = action().execute(model_inputs(action, resolved, self._os.platform), context)
            except (ActionFailed, ExpressionError) as error:
                failed.append(str(error) if item is None else f"iteration {item[0]}: {error}")
                break
            except Exception as error:  # an action's bug must not take the whole run down
                failed.append(f"{type(error).__name__}: {error}")
                break
            finally:
                if "detailedOutput" in context.extra:
                    attempt.detail = (attempt.detail or []) + list(context.extra["detailedOutput"])
            if result.reboot_requested:
                attempt.reboot = True
                return attempt
            attempt.outputs.append(dict(result.outputs))
        scope.loops = {}
        if failed:
            attempt.ok, attempt.message = False, "; ".join(failed)
        return attempt

    def _sink(self, sink: Callable[[str], None] | None) -> Callable[[str], None]:
        console = self.console
        if sink and console:
            return lambda line: (sink(line), console(line))[0]
        return sink or console or (lambda line: None)

    def _log(self, message: str) -> None:
        if self.log:
            self.log.application(message)

    # ExecuteDocument -----------------------------------------------------------------------
    def _child_engine(self, document: str, **options: Any) -> Engine:
        """The engine of a nested document (``document``: its resolved path), for a subclass to keep
        its own kind of engine down the nesting."""
        return Engine(self.executor, **options)

    def _nested(self, parent: Document, document: str, parameters: dict[str, str],
                phases: list[str] | None) -> dict[str, Any]:
        if document.startswith(("s3://", "arn:")):
            raise ActionFailed(f"document {document}: only local paths can be run here")
        path = Path(document)
        if not path.is_absolute():
            path = Path(parent.file).parent / path
        key = str(path.resolve())
        chain = (*self.ancestors, str(Path(parent.file).resolve()))
        if key in chain:
            raise ActionFailed(f"document {document} calls itself (cycle through {' -> '.join(chain)})")
        if self.depth + 1 > MAX_NESTING:
            raise ActionFailed(f"documents nest deeper than {MAX_NESTING} levels")
        try:
            nested = load_document(path)
        except DocumentInvalid as error:
            raise ActionFailed("invalid nested document:\n" + str(error)) from None
        except OSError as error:
            raise ActionFailed(f"cannot read {document}: {error.strerror or error}") from None
        child = self._child_engine(key, progress=self.progress, console=self.console, log=None,
                                   max_reboots=self.max_reboots, cwd=self.cwd, depth=self.depth + 1,
                                   ancestors=chain)
        try:
            execution = child.run([nested], phases=phases, parameters=parameters)
        except InvalidInput as error:
            raise ActionFailed(str(error)) from None
        return {"summary": execution.summary(), "detail": execution.to_dict()}
