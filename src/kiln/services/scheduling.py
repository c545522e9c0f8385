"""The scheduler as ``kiln scheduler`` and ``kiln serve`` run it: the registry's jobs, started in worker
processes, with webhook delivery and the queued builds (``build_queue``: images started over the API) on
every tick. While nothing is due the loop still looks at the queue every ``QUEUE_POLL`` seconds."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from kiln.schedule.scheduler import Scheduler, pool_start
from kiln.schedule.workers import WorkerPool
from kiln.services import build_queue
from kiln.services.common.events import BackgroundDelivery
from kiln.services.registry import scheduler_jobs
from kiln.services.startup import install

QUEUE_POLL = 1.0


def _scheduler() -> tuple[Scheduler, WorkerPool, BackgroundDelivery]:
    # A worker's first step is the start-up wiring; ``startup`` is a light module, so a spawned worker
    # does not import every family (as the registry would) before its own job needs them.
    pool = WorkerPool(initializer=install)
    delivery = BackgroundDelivery()
    loop = Scheduler(pool_start(pool), jobs=scheduler_jobs, on_tick=[pool.poll, delivery])
    loop.on_tick.append(lambda: build_queue.start_queued(pool.submit, loop.holder))
    return loop, pool, delivery


def run_once() -> list[tuple[str, datetime]]:
    """One tick: start what is due, wait for the started workers and the deliveries; returns each
    started job's key and due time."""
    loop, pool, delivery = _scheduler()
    started = loop.tick()
    pool.wait()
    delivery.join()
    return list(started)


def run_until(stop: threading.Event, say: Callable[[str], None]) -> None:
    """Run until ``stop`` is set. Running builds then finish; queued ones are dropped (their claims
    remain, so they are not started twice)."""
    loop, pool, _delivery = _scheduler()
    say(f"scheduler {loop.holder} running; Ctrl-C to stop")
    loop.run(stop, idle=lambda: QUEUE_POLL)
    if pool.busy:
        say(f"waiting for {len(pool.running)} running worker(s)")
        pool.queued.clear()
        pool.wait()
