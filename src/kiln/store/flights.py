"""One computation of an answer at a time: after a commit, the concurrent calls that would each compute
the same answer anew (the same key, the same store generation) let one compute it and wait for that one.

The key must name everything the answer depends on (the generation it is computed at, or the objects it
is made from), so a caller only ever waits for an answer it would have computed itself. When the one
computing fails (or takes over ``WAIT`` seconds), each waiter computes its own: an error is never shared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
WAIT = 60.0


class _Flight(Generic[V]):
    __slots__ = ("done", "ok", "value", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self.value: V | None = None
        self.waiters = 0


class Flights(Generic[V]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._under_way: dict[Hashable, _Flight[V]] = {}

    def waiting(self, key: Hashable) -> int:
        """How many callers have joined the computation of ``key`` under way (0 when there is none)."""
        with self._lock:
            flight = self._under_way.get(key)
            return 0 if flight is None else flight.waiters

    def run(self, key: Hashable, compute: Callable[[], V]) -> V:
        """``compute()``, or the answer of the computation of ``key`` under way when there is one."""
        with self._lock:
            flight = self._under_way.get(key)
            mine = flight is None
            if flight is None:
                flight = self._under_way[key] = _Flight()
            else:
                flight.waiters += 1
        if not mine:
            if flight.done.wait(WAIT) and flight.ok:
                return flight.value  # type: ignore[return-value]
            return compute()
        try:
            value = compute()
            flight.value, flight.ok = value, True
            return value
        finally:
            with self._lock:
                del self._under_way[key]
            flight.done.set()
