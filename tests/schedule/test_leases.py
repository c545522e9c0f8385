"""Leases and exactly-once due-run claims, including two real processes racing on one database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiln.db.engine import get_engine
from kiln.errors import Conflict
from kiln.schedule import leases
from kiln.schedule.claims import (
    bump_jobs_version,
    claim_due_run,
    jobs_version,
    last_claimed,
    prune_claims,
)

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_acquire_renew_release_and_takeover() -> None:
    assert leases.acquire("tick", "a", 60, now=T0)
    assert not leases.acquire("tick", "b", 60, now=T0 + timedelta(seconds=30))
    assert leases.acquire("tick", "a", 60, now=T0 + timedelta(seconds=30))  # renew by re-acquiring
    assert leases.holder_of("tick", now=T0 + timedelta(seconds=80)) == "a"
    assert leases.renew("tick", "a", 60, now=T0 + timedelta(seconds=80))
    assert not leases.renew("tick", "b", 60, now=T0)
    # expired: b takes over, a can no longer renew or release it
    assert leases.acquire("tick", "b", 60, now=T0 + timedelta(seconds=200))
    assert not leases.renew("tick", "a", 60)
    assert not leases.release("tick", "a")
    assert leases.release("tick", "b")
    assert leases.holder_of("tick") is None


def test_context_manager_holds_and_releases() -> None:
    with leases.held("lifecycle", "me", 60):
        assert leases.holder_of("lifecycle") == "me"
        with pytest.raises(Conflict), leases.held("lifecycle", "other", 60):
            pass
    assert leases.holder_of("lifecycle") is None


def test_claim_due_run_once() -> None:
    due = datetime(2026, 5, 1, 9, tzinfo=UTC)
    assert claim_due_run("arn:pipe/a", due, "s1")
    assert not claim_due_run("arn:pipe/a", due, "s2")
    assert claim_due_run("arn:pipe/a", due + timedelta(hours=1), "s2")
    assert claim_due_run("arn:pipe/b", due, "s2")
    assert last_claimed() == {"arn:pipe/a": due + timedelta(hours=1), "arn:pipe/b": due}


def test_prune_keeps_each_keys_latest_claim() -> None:
    due = datetime(2026, 5, 1, 9, tzinfo=UTC)
    for hours in (3, 0, 1):  # claimed out of order on purpose
        assert claim_due_run("a", due + timedelta(hours=hours), "s")
    assert claim_due_run("b", due, "s")
    assert prune_claims(due + timedelta(days=10)) == 2
    assert last_claimed() == {"a": due + timedelta(hours=3), "b": due}
    assert not claim_due_run("a", due + timedelta(hours=3), "s")


def test_jobs_version_counter() -> None:
    assert jobs_version() == 0
    bump_jobs_version()
    bump_jobs_version()
    assert jobs_version() == 2


HAMMER = """
import os, sys, time
from datetime import UTC, datetime, timedelta
from kiln.db.engine import get_engine
from kiln.schedule.claims import claim_due_run
get_engine()
open(sys.argv[2] + ".ready", "w").close()
while not os.path.exists(os.path.join(os.path.dirname(sys.argv[2]), "go")):
    time.sleep(0.01)
base = datetime(2026, 1, 1, tzinfo=UTC)
won = []
other = os.path.join(os.path.dirname(sys.argv[2]), "p2.txt" if sys.argv[1] == "proc0" else "p1.txt")
order = range(300) if sys.argv[1] == "proc0" else range(299, -1, -1)  # meet in the middle


def started() -> None:
    # after its first try, each waits for the other's (so on a busy machine one process cannot run
    # through the whole list before the other has begun)
    open(sys.argv[2] + ".started", "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(other + ".started") and time.monotonic() < deadline:
        time.sleep(0.01)


if sys.argv[3] == "leases":
    from kiln.schedule.leases import acquire
    for index, n in enumerate(order):
        if acquire(f"lease-{n}", sys.argv[1], 3600):
            won.append(f"lease-{n}")
        if index == 0:
            started()
    open(sys.argv[2], "w").write("\\n".join(won))
    sys.exit(0)
for index, i in enumerate(order):
    for key in ("k0", "k1", "k2"):
        due = base + timedelta(minutes=i)
        if claim_due_run(key, due, sys.argv[1]):
            won.append(f"{key} {due.isoformat()}")
    if index == 0:
        started()
open(sys.argv[2], "w").write("\\n".join(won))
"""


def _race(tmp_path: Path, mode: str) -> list[set[str]]:
    get_engine()  # migrate once before the race
    outputs = [tmp_path / "p1.txt", tmp_path / "p2.txt"]
    procs = [
        subprocess.Popen([sys.executable, "-c", HAMMER, f"proc{n}", str(out), mode], env=os.environ.copy())
        for n, out in enumerate(outputs)
    ]
    deadline = time.monotonic() + 120
    while not all(Path(f"{out}.ready").exists() for out in outputs) and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").touch()
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    return [set(filter(None, out.read_text().splitlines())) for out in outputs]


def test_two_processes_claim_each_due_time_exactly_once(tmp_path: Path) -> None:
    won = _race(tmp_path, "claims")
    assert not (won[0] & won[1])
    assert len(won[0] | won[1]) == 900
    assert won[0] and won[1]  # both really competed


def test_two_processes_acquire_each_lease_exactly_once(tmp_path: Path) -> None:
    won = _race(tmp_path, "leases")
    assert not (won[0] & won[1])
    assert len(won[0] | won[1]) == 300
    assert won[0] and won[1]
    assert leases.holder_of("lease-0") == ("proc0" if "lease-0" in won[0] else "proc1")
