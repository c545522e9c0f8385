"""``kiln component validate`` and ``kiln component run``: AWSTOE documents on this host."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from kiln.cli.options import Output
from kiln.cli.output import check_format, emit, progress
from kiln.errors import InvalidInput


def _split(value: str | None) -> list[str]:
    return [item for item in (value or "").split(",") if item]


def parse_parameters(text: str | None) -> dict[str, str]:
    """``k=v,k2=v2`` as awstoe takes it: both name and value required."""
    result: dict[str, str] = {}
    for item in _split(text):
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise InvalidInput(f"parameter '{item}' must be NAME=VALUE", location="--parameters")
        result[name] = value
    return result


def validate(
    documents: str = typer.Option(..., "--documents", "-d", help="Comma-separated document files."),
    platform: str = typer.Option("Linux", "--platform", help="The components' platform: Linux, Windows "
                                                             "or macOS (any host validates any platform)."),
    output: Output = "text",
) -> None:
    """Check documents without running anything; print every error as FILE:LINE:COLUMN: message."""
    from kiln.documents.validate import validate_files

    check_format(output)
    if platform.lower() not in ("linux", "windows", "macos"):
        raise InvalidInput(f"unknown platform {platform!r}", location="--platform", hint="use Linux, Windows or macOS")
    paths = _split(documents)
    issues = validate_files(paths, platform=platform)
    data = {"valid": not issues, "documents": paths,
            "errors": [{"file": i.file, "line": i.line, "column": i.column, "message": i.message}
                       for i in issues]}
    if output.lower() == "json":
        emit(output, data)
    else:
        for issue in issues:
            sys.stderr.write(f"{issue}\n")
        if not issues:
            sys.stdout.write(f"{len(paths)} document(s) valid\n")
        else:
            sys.stderr.write(f"{len(issues)} error(s)\n")
    raise typer.Exit(1 if issues else 0)


def run(
    documents: str = typer.Option(..., "--documents", "-d", help="Comma-separated document files."),
    phases: str = typer.Option(None, "--phases", "-p", help="Only these phases, e.g. build,validate."),
    parameters: str = typer.Option(None, "--parameters", help="Overrides: name=value,name2=value2."),
    log_directory: Path = typer.Option(Path("."), "--log-directory", "-l", help="Where logs go."),
    execution_id: str = typer.Option(None, "--execution-id", "-i", help="Default: a random UUID."),
    output: Output = "text",
) -> None:
    """Run documents on this host as awstoe run does (nothing runs if any document is invalid)."""
    import uuid

    from kiln.documents.host import HostExecutor
    from kiln.documents.report import SUCCESS
    from kiln.documents.run import run_documents
    from kiln.documents.validate import load_document, validate_files

    check_format(output)
    paths = _split(documents)
    overrides = parse_parameters(parameters)
    issues = validate_files(paths)
    if issues:
        for issue in issues:
            sys.stderr.write(f"{issue}\n")
        sys.stderr.write(f"{len(issues)} error(s); nothing was run\n")
        raise typer.Exit(1)
    execution, detailed = run_documents(
        [load_document(path) for path in paths], executor=HostExecutor(), log_directory=log_directory,
        execution_id=execution_id or str(uuid.uuid4()), phases=_split(phases) or None, parameters=overrides,
        progress=progress, console=lambda lines: progress("\n".join(f"    | {line}" for line in lines.split("\n"))),
    )
    counts = execution.counts()

    def text() -> None:
        sys.stdout.write(
            f"{execution.status}: {counts['executedStepCount']} step(s) run, "
            f"{counts['failedStepCount']} failed, {counts['ignoredFailedStepCount']} ignored, "
            f"{counts['skippedStepCount']} skipped\n"
            f"execution {execution.execution_id}; logs in {detailed.parent}\n"
        )
        if execution.failure_message:
            sys.stdout.write(f"failure: {execution.failure_message}\n")

    emit(output, execution.to_dict(), text)
    raise typer.Exit(0 if execution.status == SUCCESS else 1)


def register(app: typer.Typer) -> None:
    """Add ``validate`` and ``run`` to the ``kiln component`` group."""
    app.command("validate")(validate)
    app.command("run")(run)
