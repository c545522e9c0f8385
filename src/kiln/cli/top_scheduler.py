"""``kiln scheduler``: run the pipeline scheduler in the foreground (``kiln.services.scheduling``)."""

from __future__ import annotations

import typer

from kiln.cli.options import Output
from kiln.cli.output import emit


def scheduler(
    once: bool = typer.Option(False, "--once", help="Run one tick, wait for started workers, exit."),
    output: Output = "text",
) -> None:
    """Start scheduled runs when they fall due and deliver webhooks (foreground)."""
    import logging
    import signal
    import threading

    from kiln.services import scheduling

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("kiln").setLevel(logging.INFO)
    if once:
        started = scheduling.run_once()
        rows = [{"key": key, "dueTime": due} for key, due in started]
        lines = [f"started {key} for {due.isoformat()}" for key, due in started]
        emit(output, {"started": rows}, "\n".join(lines) or "nothing due")
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    scheduling.run_until(stop, say=lambda line: typer.echo(line, err=True))
