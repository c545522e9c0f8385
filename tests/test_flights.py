"""One computation per key at a time (``kiln.store.flights``): callers that find one under way wait for
its answer; an error is not shared (each waiter computes its own); other keys do not wait."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from kiln.store.flights import Flights

WAITERS = 6


def _joined(flights: Flights[object], key: object, count: int) -> None:
    """Until ``count`` callers have joined the flight of ``key``: each then gets its answer."""
    while flights.waiting(key) < count:
        threading.Event().wait(0.001)


def test_callers_of_one_key_share_one_computation() -> None:
    flights: Flights[object] = Flights()
    release, started = threading.Event(), threading.Event()
    runs: list[int] = []
    answer = object()

    def compute() -> object:
        runs.append(1)
        started.set()
        release.wait(30)
        return answer

    with ThreadPoolExecutor(WAITERS + 1) as pool:
        first = pool.submit(flights.run, "k", compute)
        started.wait(30)
        others = [pool.submit(flights.run, "k", compute) for _ in range(WAITERS)]
        _joined(flights, "k", WAITERS)
        assert flights.run("other", lambda: "alone") == "alone"  # another key does not wait
        release.set()
        assert all(future.result(30) is answer for future in [first, *others])
    assert runs == [1]
    assert flights.waiting("k") == 0
    assert flights.run("k", lambda: "again") == "again"  # done: the next call computes anew


def test_an_error_is_not_shared() -> None:
    flights: Flights[str] = Flights()
    release, started = threading.Event(), threading.Event()

    def failing() -> str:
        started.set()
        release.wait(30)
        raise RuntimeError("the first one failed")

    with ThreadPoolExecutor(WAITERS + 1) as pool:
        first = pool.submit(flights.run, "k", failing)
        started.wait(30)
        others = [pool.submit(flights.run, "k", lambda: "own") for _ in range(WAITERS)]
        _joined(flights, "k", WAITERS)
        release.set()
        with pytest.raises(RuntimeError, match="the first one failed"):
            first.result(30)
        assert [future.result(30) for future in others] == ["own"] * WAITERS
