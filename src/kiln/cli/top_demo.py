"""``kiln demo``: show kiln working end to end on this machine."""

from __future__ import annotations

import typer

from kiln.cli.options import Output
from kiln.cli.output import check_format, emit


def _print_stage(stage: dict) -> None:
    from kiln.cli.output import table

    print(f"\n== {stage['stage']}: {stage['outcome']}")
    table([column for column in stage["columns"]], stage["rows"])


def _fleet_demo(output: str) -> None:
    import sys

    from kiln.cli.output import progress
    from kiln.services.demo_fleet import run_fleet_demo

    as_json = check_format(output) == "json"
    stages = run_fleet_demo(say=(lambda _: None) if as_json else _print_stage, progress=progress)
    if as_json:
        emit(output, stages)
    else:
        sys.stdout.write("\nthe fleet demo is done: every stage above ran for real on this machine.\n"
                         "Its group keeps running; to stop it: kiln asg delete web-asg --force-delete "
                         "--region us-east-1 && kiln asg reconcile --region us-east-1\n")


def demo(
    what: str = typer.Argument("image", help="image (the golden nginx image, default) or fleet (audit and "
                                            "remediation of a fleet, end to end)."),
    document_only: bool = typer.Option(
        False, "--document-only", help="Only run the example component document on this host."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild even if the same image was built."),
    output: Output = "text",
) -> None:
    """Build the demo golden image (nginx on Debian, hardened and tested) from examples/demo.yaml."""
    import sys

    from kiln.cli.output import progress

    if what == "fleet":
        _fleet_demo(output)
        return
    if what != "image":
        raise typer.BadParameter(f"{what!r} is not a demo; use image or fleet", param_hint="WHAT")
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
