"""``kiln demo``: show kiln working end to end on this machine."""

from __future__ import annotations

import typer

from kiln.cli.options import Output
from kiln.cli.output import check_format, emit


def demo(
    document_only: bool = typer.Option(
        False, "--document-only", help="Only run the example component document on this host."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild even if the same image was built."),
    output: Output = "text",
) -> None:
    """Build the demo golden image (nginx on Debian, hardened and tested) from examples/demo.yaml."""
    import sys

    from kiln.cli.output import progress

    as_json = check_format(output) == "json"
    say = (lambda line: sys.stderr.write(line + "\n")) if as_json else print
    if document_only:
        from kiln.documents.demo import run_document_demo

        result = run_document_demo(say=say)
        if as_json:
            emit(output, result)
        raise typer.Exit(0 if result["status"] == "success" else 1)
    from kiln.services.demo import run_build_demo

    result = run_build_demo(say=say, progress=progress, use_cache=not no_cache)
    if as_json:
        emit(output, result)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
