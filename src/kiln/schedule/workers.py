"""A pool of worker processes with one global concurrency limit (``KILN_MAX_CONCURRENT_BUILDS``).

Each task runs ``target(*args)`` (a module-level function, so it pickles by name) in its own spawned
process, so a worker that raises,
calls ``os._exit`` or is killed only ends its own process; ``poll`` reaps it and starts the next
queued task. Tasks still queued when the scheduler process dies are lost (their due runs stay
claimed, so they are not started twice).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("kiln.schedule")
DEFAULT_LIMIT = 2


def max_concurrent() -> int:
    raw = os.environ.get("KILN_MAX_CONCURRENT_BUILDS", "")
    try:
        return max(1, int(raw)) if raw else DEFAULT_LIMIT
    except ValueError:
        return DEFAULT_LIMIT


Target = Callable[..., object]


def _run(initializer: Callable[[], object] | None, target: Target, args: tuple[Any, ...]) -> None:
    if initializer is not None:
        initializer()
    target(*args)


def _name(target: Target) -> str:
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"


@dataclass
class Finished:
    name: str
    target: str
    exitcode: int | None


@dataclass
class WorkerPool:
    limit: int = field(default_factory=max_concurrent)
    # Run first in every worker process (e.g. the services' start-up wiring).
    initializer: Callable[[], object] | None = None
    queued: deque[tuple[str, Target, tuple[Any, ...]]] = field(default_factory=deque)
    running: dict[str, tuple[str, BaseProcess]] = field(default_factory=dict)
    finished: list[Finished] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._count = 0

    def submit(self, target: Target, *args: Any) -> str:
        """Queue ``target(*args)``; it starts as soon as a slot is free. Returns the task name."""
        self._count += 1
        name = f"task-{self._count}"
        self.queued.append((name, target, args))
        self.poll()
        return name

    def poll(self) -> list[Finished]:
        """Reap finished workers and start queued tasks up to the limit; returns what finished."""
        done: list[Finished] = []
        for name, (target, process) in list(self.running.items()):
            if process.is_alive():
                continue
            process.join()
            result = Finished(name, target, process.exitcode)
            if process.exitcode != 0:
                log.warning("worker %s (%s) ended with exit code %s", name, target, process.exitcode)
            done.append(result)
            del self.running[name]
            if hasattr(process, "close"):
                process.close()
        while self.queued and len(self.running) < self.limit:
            name, target, args = self.queued.popleft()
            process = self._context.Process(
                target=_run, args=(self.initializer, target, args), name=name, daemon=False
            )
            try:
                process.start()
            except OSError as error:  # fork/spawn failure must not stop the scheduler
                log.error("could not start worker %s: %s", name, error)
                done.append(Finished(name, _name(target), None))
                continue
            self.running[name] = (_name(target), process)
        self.finished.extend(done)
        return done

    @property
    def busy(self) -> bool:
        return bool(self.running or self.queued)

    def pids(self) -> list[int]:
        return [p.pid for _, p in self.running.values() if p.pid is not None]

    def wait(self, timeout: float | None = None) -> None:
        """Run until every queued and running task has finished (or ``timeout`` passes)."""
        import time
        from multiprocessing.connection import wait

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.busy:
            self.poll()
            if not self.running:
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            wait([p.sentinel for _, p in self.running.values()], timeout=min(left or 1.0, 1.0))
