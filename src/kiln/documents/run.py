"""One AWSTOE run, as ``awstoe run`` does it: documents through the engine into a ``TOE_…`` folder.

``kiln component run`` (documents on this host), every component a build runs (in its build or test
instance) and the document demo all run documents through :func:`run_documents`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kiln.documents.engine import Engine, bind_parameters
from kiln.documents.executor import Executor
from kiln.documents.model import Document, DocumentInvalid
from kiln.documents.report import Execution, RunLog
from kiln.documents.validate import parse

Progress = Callable[[str], None]


def document_from_text(text: str, name: str, *, platform: str | None = None) -> Document:
    """Parse and validate one document held in memory; :class:`DocumentInvalid` lists every error.

    With no ``platform`` the actions are not checked against one: a component's platform was checked
    when it was created, and a step whose action the instance cannot run fails when it runs.
    """
    document, issues = parse(text, name, platform=platform)
    if document is None or issues:
        raise DocumentInvalid(issues)
    return document


def run_documents(
    documents: Sequence[Document],
    *,
    executor: Executor,
    log_directory: Path | str,
    execution_id: str,
    phases: Sequence[str] | None = None,
    parameters: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    console: Progress | None = None,
    cwd: str | None = None,
    engine: Callable[..., Engine] = Engine,
) -> tuple[Execution, Path]:
    """Run ``phases`` (all when None) of ``documents`` on ``executor``; returns the execution and its
    ``detailedoutput.json``, written with the rest of the logs under ``log_directory``.

    Parameters are bound first: a wrong or missing value stops the run before any log is written.
    ``engine`` makes the engine (an :class:`Engine` subclass, e.g. one that resumes after a reboot).
    """
    overrides = dict(parameters or {})
    for document in documents:
        bind_parameters(document, overrides)
    log = RunLog(log_directory, execution_id)
    try:
        running = engine(executor, log=log, progress=progress, console=console, cwd=cwd)
        execution = running.run(list(documents), phases=list(phases) if phases is not None else None,
                                parameters=overrides, execution_id=execution_id)
        detailed = log.finish(execution, running.chaining)
    finally:
        log.close()
    return execution, detailed
