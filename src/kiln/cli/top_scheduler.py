"""``kiln scheduler``: run the pipeline scheduler in the foreground."""

from __future__ import annotations

import typer

from kiln.cli.output import OutputFormat, emit


def register(app: typer.Typer) -> None:
    @app.command("scheduler")
    def scheduler(
        once: bool = typer.Option(False, "--once", help="Run one tick, wait for started workers, exit."),
        output: OutputFormat = "text",
    ) -> None:
        """Start scheduled runs when they fall due and deliver webhooks (foreground)."""
        import logging
        import signal
        import threading

        from kiln.schedule.scheduler import Scheduler, pool_start
        from kiln.schedule.workers import WorkerPool
        from kiln.services.common.events import BackgroundDelivery
        from kiln.services.registry import scheduler_jobs, worker_initializer

        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        logging.getLogger("kiln").setLevel(logging.INFO)
        pool = WorkerPool(initializer=worker_initializer)
        delivery = BackgroundDelivery()
        loop = Scheduler(pool_start(pool), jobs=scheduler_jobs, on_tick=[pool.poll, delivery])
        if once:
            started = loop.tick()
            pool.wait()
            delivery.join()
            rows = [{"key": key, "dueTime": due} for key, due in started]
            lines = [f"started {key} for {due.isoformat()}" for key, due in started]
            emit(output, {"started": rows}, "\n".join(lines) or "nothing due")
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        typer.echo(f"scheduler {loop.holder} running; Ctrl-C to stop", err=True)
        loop.run(stop, idle=lambda: 1.0 if pool.busy else None)
        if pool.busy:  # running builds finish; queued ones are dropped (their claims remain)
            typer.echo(f"waiting for {len(pool.running)} running worker(s)", err=True)
            pool.queued.clear()
            pool.wait()
