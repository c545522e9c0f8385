"""Scheduler semantics in-process, then with real processes: crashes, restarts, two schedulers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schedule_helpers
from schedule_helpers import read_starts

from kiln.db.engine import get_engine
from kiln.schedule.claims import bump_jobs_version
from kiln.schedule.scheduler import Job, Scheduler
from kiln.schedule.workers import WorkerPool

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


PAST = utc(2020, 6, 1)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []

    def __call__(self, job: Job, due: datetime) -> None:
        self.calls.append((job.key, due))


def test_after_downtime_only_the_latest_missed_run_starts() -> None:
    jobs = [Job("hourly", "cron(0 * * * ? *)", not_before=utc(2026, 1, 1, 5, 10))]
    start = Recorder()
    first = Scheduler(start, jobs=lambda: jobs)
    assert first.tick(utc(2026, 1, 1, 10, 30)) == [("hourly", utc(2026, 1, 1, 10))]
    assert first.tick(utc(2026, 1, 1, 10, 45)) == []
    assert first.tick(utc(2026, 1, 1, 11)) == [("hourly", utc(2026, 1, 1, 11))]
    # a restarted scheduler reads the claims: nothing again, then one run for 12:00-13:00 downtime
    second = Scheduler(start, jobs=lambda: jobs)
    assert second.tick(utc(2026, 1, 1, 11, 30)) == []
    assert second.tick(utc(2026, 1, 1, 13, 5)) == [("hourly", utc(2026, 1, 1, 13))]
    assert start.calls == [("hourly", utc(2026, 1, 1, h)) for h in (10, 11, 13)]


def test_two_schedulers_start_a_due_time_once() -> None:
    jobs = [Job(f"job-{i}", "cron(0/5 * * * ? *)", not_before=utc(2026, 1, 1)) for i in range(10)]
    start = Recorder()
    a = Scheduler(start, jobs=lambda: jobs, holder="a")
    b = Scheduler(start, jobs=lambda: jobs, holder="b")
    for minute in range(0, 30):
        now = utc(2026, 1, 1, 1, minute, 7)
        (a if minute % 2 else b).tick(now)
        (b if minute % 2 else a).tick(now)
    assert len(start.calls) == len(set(start.calls)) == 10 * 6  # 01:00 .. 01:25 for ten jobs


def test_new_job_without_history_waits_for_its_next_time_and_disabled_never_runs() -> None:
    jobs = [
        Job("new", "cron(0 12 * * ? *)"),
        Job("off", "cron(* * * * ? *)", enabled=False, not_before=utc(2026, 1, 1)),
        Job("broken", "cron(0 12 * * * *)", not_before=utc(2026, 1, 1)),
        Job("seen", "cron(0 12 * * ? *)", last_due_run=utc(2026, 1, 2, 12)),
    ]
    start = Recorder()
    loop = Scheduler(start, jobs=lambda: jobs)
    assert loop.tick(utc(2026, 1, 2, 13)) == []  # "new" first seen after 12:00; "seen" ran at 12:00
    noon = utc(2026, 1, 3, 12)
    assert loop.tick(utc(2026, 1, 3, 12, 0, 30)) == [("new", noon), ("seen", noon)]
    assert loop.seconds_until_next(utc(2026, 1, 3, 12, 1)) == 30.0  # bounded sleep


def test_jobs_are_reread_only_when_the_version_changes() -> None:
    jobs: list[Job] = []
    reads = []

    def source() -> list[Job]:
        reads.append(1)
        return list(jobs)

    start = Recorder()
    loop = Scheduler(start, jobs=source, reload_every=3600)
    loop.tick(utc(2026, 1, 1))
    jobs.append(Job("late", "cron(0 * * * ? *)", not_before=utc(2026, 1, 1)))
    assert loop.tick(utc(2026, 1, 1, 1, 0, 5)) == []  # not re-read yet
    assert len(reads) == 1
    bump_jobs_version()
    assert loop.tick(utc(2026, 1, 1, 1, 0, 6)) == [("late", utc(2026, 1, 1, 1))]
    assert len(reads) == 2


def test_crashing_workers_do_not_stop_the_scheduler(tmp_path: Path, monkeypatch) -> None:
    starts = tmp_path / "starts.txt"
    monkeypatch.setenv("SCHED_STARTS", str(starts))
    jobs = [
        Job("raise", "cron(0 0 1 1 ? 2021)", not_before=PAST, target=schedule_helpers.raise_error),
        Job("exit", "cron(0 0 1 2 ? 2021)", not_before=PAST, target=schedule_helpers.hard_exit),
        Job("hang", "cron(0 0 1 3 ? 2021)", not_before=PAST, target=schedule_helpers.sleep_long),
        Job("good", "cron(0 0 1 1 ? 2025)", not_before=PAST, target=schedule_helpers.record_start),
    ]
    pool = WorkerPool(limit=1)
    from kiln.schedule.scheduler import pool_start

    loop = Scheduler(pool_start(pool), jobs=lambda: list(jobs), on_tick=[pool.poll])
    assert [key for key, _ in loop.tick()] == ["raise", "exit", "hang", "good"]
    deadline = time.monotonic() + 120
    killed = False
    while not read_starts(str(starts)) and time.monotonic() < deadline:
        pool.poll()
        for target, process in list(pool.running.values()):
            if target.endswith("sleep_long") and process.pid and not killed:
                os.kill(process.pid, signal.SIGKILL)
                killed = True
        loop.tick()
        time.sleep(0.05)
    pool.wait(timeout=60)
    assert read_starts(str(starts)) == [("good", "2025-01-01T00:00:00+00:00")]
    codes = {f.target.rpartition(":")[2]: f.exitcode for f in pool.finished}
    assert codes == {"raise_error": 1, "hard_exit": 1, "sleep_long": -signal.SIGKILL, "record_start": 0}
    # still ticking: a new job is picked up and started
    jobs.append(Job("after", "cron(0 0 1 1 ? 2024)", not_before=PAST, target=schedule_helpers.record_start))
    bump_jobs_version()
    assert loop.tick() == [("after", utc(2024, 1, 1))]
    pool.wait(timeout=60)
    assert ("after", "2024-01-01T00:00:00+00:00") in read_starts(str(starts))


def _scheduler_env(tmp_path: Path, jobs: list[dict]) -> dict[str, str]:
    jobs_file = tmp_path / "jobs.json"
    jobs_file.write_text(json.dumps(jobs))
    env = os.environ.copy()
    env.update(
        SCHED_JOBS=str(jobs_file),
        SCHED_STARTS=str(tmp_path / "starts.txt"),
        KILN_JOB_SOURCES="schedule_helpers:jobs_from_file",
        PYTHONPATH=os.pathsep.join([str(HERE), str(SRC)]),
    )
    return env


def _kiln(*args: str) -> list[str]:
    return [sys.executable, "-m", "kiln", *args]


def test_restarted_scheduler_process_does_not_rerun_claimed_due_times(tmp_path: Path) -> None:
    get_engine()
    env = _scheduler_env(tmp_path, [
        # due yearly 2020..2025: only 2025-01-01 may run (one missed run, the latest)
        {"key": "yearly", "schedule": "cron(0 0 1 1 ? 2020-2025)", "not_before": "2019-06-01T00:00:00+00:00"},
        # first Monday of each month of 2024: the latest is Monday 2 December 2024, 12:30
        {"key": "monday", "schedule": "cron(30 12 ? * 2#1 2024)", "not_before": "2023-06-01T00:00:00+00:00"},
        {"key": "future", "schedule": "cron(0 0 1 1 ? 2190)", "not_before": "2023-06-01T00:00:00+00:00"},
    ])
    starts = str(tmp_path / "starts.txt")
    proc = subprocess.Popen(_kiln("scheduler"), env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(read_starts(starts)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    expected = {("yearly", "2025-01-01T00:00:00+00:00"), ("monday", "2024-12-02T12:30:00+00:00")}
    assert set(read_starts(starts)) == expected
    again = subprocess.run(_kiln("scheduler", "--once", "--output", "json"), env=env, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"started": []}
    assert sorted(read_starts(starts)) == sorted(expected)


@pytest.mark.slow
def test_two_scheduler_processes_start_each_due_time_once(tmp_path: Path) -> None:
    get_engine()
    jobs = [
        {"key": f"job-{i}", "schedule": f"cron({i} 0 1 1 ? 2020-2025)", "not_before": "2019-06-01T00:00:00Z"}
        for i in range(20)
    ]
    env = _scheduler_env(tmp_path, jobs)
    procs = [subprocess.Popen(_kiln("scheduler", "--once"), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=180) == 0
    starts = read_starts(str(tmp_path / "starts.txt"))
    assert sorted(starts) == sorted((f"job-{i}", f"2025-01-01T00:{i:02d}:00+00:00") for i in range(20))
