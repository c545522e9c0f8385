"""The scheduler loop: starts each job's due runs, knowing nothing about pipelines.

Jobs come from the ``jobs`` callable its creator passes (``kiln.services.registry.scheduler_jobs``
lists pipelines and lifecycle policies). Semantics:

- Each enabled job has a cron schedule in a time zone. Its *baseline* is the latest of the
  job's ``last_due_run``, the latest due time ever claimed for its key (``schedule_claims``),
  and ``not_before`` (or, without any of those, the moment this scheduler first saw the job).
- A job is due when a scheduled time lies after its baseline and at or before now. Only the
  latest such time is started: after downtime at most ONE missed run per job happens.
- Every start is claimed first (``claim_due_run``: unique per key and due time), so a due time
  is started once, across restarts and across several schedulers on one database. A claim whose
  start then fails is not retried.
- Idle cost: each job's next due time is computed once and kept in a heap; the loop sleeps until
  the earliest (at most ``max_sleep`` seconds). Jobs are re-read only when the jobs version
  counter (``bump_jobs_version``) changes or every ``reload_every`` seconds.
- Each tick also runs the ``on_tick`` hooks (webhook delivery); their failures are logged only.
"""

from __future__ import annotations

import heapq
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from kiln.db.base import utcnow
from kiln.schedule.cron import CronExpression, parse, resolve_timezone

log = logging.getLogger("kiln.schedule")


@dataclass(frozen=True)
class Job:
    """One scheduled thing, as a job source reports it.

    ``key`` identifies it across restarts (a pipeline ARN, ``lifecycle:<policy>``...).
    ``last_due_run`` is the source's own record of its last scheduled run, if it keeps one.
    ``not_before``: no due time at or before this counts, e.g. the moment a pipeline was
    (re-)enabled, so that enabling a long-disabled job does not start its latest missed run.
    """

    key: str
    schedule: str
    timezone: str | None = None
    enabled: bool = True
    last_due_run: datetime | None = None
    not_before: datetime | None = None
    # A module-level function run in a worker process as target(key, due_time_iso) by the default start.
    target: Callable[[str, str], object] | None = None
    # Asked in the scheduler's own process before a worker is started for a due run: False skips the
    # run (it stays claimed). For frequent jobs that are usually idle, so an idle run costs a query
    # instead of a worker process.
    needed: Callable[[], bool] | None = None


StartFn = Callable[[Job, datetime], None]


@dataclass
class _Entry:
    job: Job
    expr: CronExpression
    tz: ZoneInfo
    next_due: datetime | None


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Scheduler:
    def __init__(
        self,
        start: StartFn,
        *,
        jobs: Callable[[], list[Job]],
        holder: str | None = None,
        max_sleep: float = 30.0,
        reload_every: float = 300.0,
        on_tick: Iterable[Callable[[], object]] = (),
        keep_claims_days: float = 30.0,
    ) -> None:
        self.keep_claims_days = keep_claims_days
        self.start = start
        self.jobs = jobs
        self.holder = holder or default_holder()
        self.max_sleep = max_sleep
        self.reload_every = reload_every
        self.on_tick = list(on_tick)
        self.entries: dict[str, _Entry] = {}
        self.heap: list[tuple[datetime, str]] = []
        self.first_seen: dict[str, datetime] = {}
        self._version: int | None = None
        self._loaded_at = 0.0
        self.started: list[tuple[str, datetime]] = []

    def reload(self, now: datetime) -> None:
        from datetime import timedelta

        from kiln.schedule.claims import last_claimed, prune_claims

        prune_claims(now - timedelta(days=self.keep_claims_days))
        claimed = last_claimed()
        entries: dict[str, _Entry] = {}
        for job in self.jobs():
            if not job.enabled or job.key in entries:
                continue
            try:
                expr, tz = parse(job.schedule), resolve_timezone(job.timezone)
            except Exception as error:
                log.warning("job %s skipped: %s", job.key, error)
                continue
            first = self.first_seen.setdefault(job.key, now)
            marks = [t for t in (job.last_due_run, claimed.get(job.key), job.not_before) if t is not None]
            baseline = max(marks) if marks else first
            entries[job.key] = _Entry(job, expr, tz, expr.next_after(baseline, tz))
        self.entries = entries
        self.heap = [(e.next_due, key) for key, e in entries.items() if e.next_due is not None]
        heapq.heapify(self.heap)
        self._loaded_at = time.monotonic()

    def _jobs_changed(self) -> bool:
        from kiln.schedule.claims import jobs_version

        version = jobs_version()
        changed = version != self._version or time.monotonic() - self._loaded_at > self.reload_every
        self._version = version
        return changed

    def tick(self, now: datetime | None = None) -> list[tuple[str, datetime]]:
        """Start whatever is due at ``now``; returns the (key, due time) pairs this call started."""
        from kiln.schedule.claims import claim_due_run

        now = now or utcnow()
        if self._jobs_changed():
            self.reload(now)
        started: list[tuple[str, datetime]] = []
        while self.heap and self.heap[0][0] <= now:
            _, key = heapq.heappop(self.heap)
            entry = self.entries[key]
            due = entry.expr.latest_at_or_before(now, entry.tz) or entry.next_due
            assert due is not None
            try:
                claimed = claim_due_run(key, due, self.holder)
            except Exception:  # database trouble: keep the job due and retry on the next tick
                heapq.heappush(self.heap, (entry.next_due or due, key))
                raise
            if claimed:
                try:
                    self.start(entry.job, due)
                    started.append((key, due))
                except Exception:
                    log.exception("starting %s for %s failed", key, due.isoformat())
            entry.next_due = entry.expr.next_after(max(due, now), entry.tz)
            if entry.next_due is not None:
                heapq.heappush(self.heap, (entry.next_due, key))
        for hook in self.on_tick:
            try:
                hook()
            except Exception:
                log.exception("scheduler hook %r failed", hook)
        self.started.extend(started)
        return started

    def seconds_until_next(self, now: datetime | None = None) -> float:
        now = now or utcnow()
        if not self.heap:
            return self.max_sleep
        return max(0.0, min(self.max_sleep, (self.heap[0][0] - now).total_seconds()))

    def run(
        self, stop: threading.Event | None = None, idle: Callable[[], float | None] | None = None
    ) -> None:
        """Tick until ``stop`` is set. ``idle`` may shorten the sleep (e.g. while workers run)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # the database may be briefly unavailable; try again next tick
                log.exception("scheduler tick failed")
            delay = self.seconds_until_next()
            limit = idle() if idle else None
            if limit is not None:
                delay = min(delay, limit)
            stop.wait(delay + 0.001)


def pool_start(pool: object) -> StartFn:
    """The default start: run the job's ``target`` in a worker process as target(key, due_iso), unless
    its ``needed`` says there is nothing to do."""

    def start(job: Job, due: datetime) -> None:
        if not job.target:
            log.warning("job %s has no target; nothing to start", job.key)
            return
        if job.needed is not None and not job.needed():
            return
        pool.submit(job.target, job.key, due.isoformat())  # type: ignore[attr-defined]

    return start
