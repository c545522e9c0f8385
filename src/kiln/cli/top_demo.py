"""``kiln demo``: show kiln working end to end on this machine."""

from __future__ import annotations

import typer

from kiln.cli.output import OutputFormat, check_format, emit


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(output: OutputFormat = "text") -> None:
        """Run the example component document on this host in a temporary directory."""
        import sys

        from kiln.documents.demo import run_document_demo

        as_json = check_format(output) == "json"
        say = (lambda line: sys.stderr.write(line + "\n")) if as_json else print
        result = run_document_demo(say=say)
        if as_json:
            emit(output, result)
        raise typer.Exit(0 if result["status"] == "success" else 1)
