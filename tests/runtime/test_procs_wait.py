"""procs.wait_gone: woken as each process exits, False while one lives past the timeout, and a pid
that names another process now (its start time differs) counts as gone."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

from kiln.runtime import procs


@contextlib.contextmanager
def _running(*argv: str) -> Iterator[procs.ProcessId]:
    """A child process, by its identity; killed (if still running) and reaped after."""
    child = subprocess.Popen(list(argv))
    try:
        identity = procs.identify(child.pid)
        assert identity is not None
        yield identity
    finally:
        child.kill()
        child.wait()


def test_wait_gone_returns_once_every_process_has_exited() -> None:
    with _running("sleep", "0.2") as quick, _running("sleep", "0.4") as slower:
        assert procs.wait_gone([quick, slower], 30) is True
        assert not procs.is_alive(quick.pid, quick.start_time)
        assert not procs.is_alive(slower.pid, slower.start_time)  # a zombie until reaped: gone


def test_wait_gone_is_false_while_a_process_lives_on() -> None:
    with _running("sleep", "60") as identity:
        assert procs.wait_gone([identity], 0.2) is False
        assert procs.is_alive(identity.pid, identity.start_time)
        assert procs.kill_and_wait(identity, 30) is True


def test_a_pid_that_names_another_process_now_counts_as_gone() -> None:
    with _running("sleep", "60") as identity:
        assert procs.wait_gone([procs.ProcessId(identity.pid, identity.start_time + 1)], 30) is True
        assert procs.is_alive(identity.pid, identity.start_time)  # the process itself was left alone


def test_a_process_gone_between_the_check_and_its_pidfd_counts_as_gone(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The race (it exited, its pid maybe reused, just before the pidfd was opened) cannot be made to
    happen on demand: the second look at the process is made to answer as it would then."""
    with _running("sleep", "60") as identity:
        looks = iter([True, False])
        monkeypatch.setattr(procs, "is_alive", lambda pid, start_time: next(looks))
        before = set(os.listdir("/proc/self/fd"))
        assert procs.wait_gone([identity], 30) is True
        assert set(os.listdir("/proc/self/fd")) == before  # its pidfd closed
