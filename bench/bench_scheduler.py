"""Scheduler cost: idle CPU with 1,000 cron jobs, due-to-start latency, next-time evaluation speed.

Runs the real scheduler loop in a thread against a temporary database. The idle window runs up
to the next minute boundary at least 25 s away (so 25-85 s); ten jobs fall due at that boundary
and their start latency is measured. Goals: idle CPU < 1% of a core, latency < 1 s.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta


def _evaluation_speed() -> dict[str, float]:
    from croniter import croniter

    from kiln.schedule.cron import parse

    start = datetime(2026, 1, 1, 0, 7, tzinfo=UTC)
    ours = parse("cron(0 12 ? * MON-FRI *)")
    rounds = 2000
    began = time.perf_counter()
    when = start
    for _ in range(rounds):
        when = ours.next_after(when)  # type: ignore[assignment]
    ours_us = (time.perf_counter() - began) / rounds * 1e6
    theirs = croniter("0 12 * * 1-5", start)
    began = time.perf_counter()
    for _ in range(rounds):
        theirs.get_next(datetime)
    croniter_us = (time.perf_counter() - began) / rounds * 1e6
    sparse = parse("cron(0 0 29 2 ? *)")  # Feb 29: a scan minute by minute would walk years
    began = time.perf_counter()
    for _ in range(200):
        sparse.next_after(start)
    sparse_us = (time.perf_counter() - began) / 200 * 1e6
    return {
        "next_after_us": round(ours_us, 1),
        "croniter_next_us": round(croniter_us, 1),
        "next_after_vs_croniter": round(ours_us / croniter_us, 2),
        "next_after_feb29_us": round(sparse_us, 1),
    }


def run() -> dict[str, float]:
    home = tempfile.mkdtemp(prefix="kiln-bench-sched-")
    previous = os.environ.get("KILN_HOME")
    os.environ["KILN_HOME"] = home
    try:
        from kiln.db.engine import get_engine, reset_engines
        from kiln.schedule.scheduler import Job, Scheduler
        from kiln.services.common.events import deliver_pending

        reset_engines()
        get_engine()
        now = datetime.now(UTC)
        boundary = (now + timedelta(seconds=25 + 60)).replace(second=0, microsecond=0)
        rng = random.Random(7)
        jobs = []
        for i in range(990):
            minute, hour = rng.randrange(60), rng.randrange(24)
            if (hour, minute) == (boundary.hour, boundary.minute):
                minute = (minute + 30) % 60
            jobs.append(Job(f"job-{i}", f"cron({minute} {hour} ? * MON-FRI *)", "Europe/Berlin"))
        jobs += [Job(f"due-{i}", f"cron({boundary.minute} {boundary.hour} * * ? *)") for i in range(10)]
        latencies: list[float] = []

        def start(job: Job, due: datetime) -> None:
            latencies.append(time.time() - due.timestamp())

        loop = Scheduler(start, jobs=lambda: jobs, on_tick=[deliver_pending])
        stop = threading.Event()
        began = time.process_time()
        loop.tick()
        reload_ms = (time.process_time() - began) * 1000
        thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
        thread.start()
        time.sleep(1.0)
        idle_wall_start, idle_cpu_start = time.monotonic(), time.process_time()
        time.sleep(max(1.0, boundary.timestamp() - time.time() - 2.0))
        idle_wall = time.monotonic() - idle_wall_start
        idle_cpu = time.process_time() - idle_cpu_start
        deadline = time.monotonic() + 10
        while len(latencies) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join(timeout=35)
        result = {
            "jobs": float(len(jobs)),
            "initial_load_cpu_ms": round(reload_ms, 1),
            "idle_window_s": round(idle_wall, 1),
            "idle_cpu_s_per_minute": round(idle_cpu / idle_wall * 60, 4),
            "idle_cpu_percent_of_core": round(idle_cpu / idle_wall * 100, 3),
            "due_to_start_latency_max_s": round(max(latencies), 3) if latencies else -1.0,
            "started_of_10_due": float(len(latencies)),
        }
        result.update(_evaluation_speed())
        return result
    finally:
        from kiln.db.engine import reset_engines

        reset_engines()
        if previous is None:
            os.environ.pop("KILN_HOME", None)
        else:
            os.environ["KILN_HOME"] = previous
        import shutil

        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
