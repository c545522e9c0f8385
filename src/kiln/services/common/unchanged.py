"""Answers kept while the database has not changed: what nearly every API call asks the same way (the
caller's organization and OUs, its allowed images settings) read once per store generation instead of
once per call.

The generation (``kiln.store.generation``) is read before the answer, so a commit in between only makes
the next call read again; where it cannot be told (not SQLite, or inside a unit of work whose own writes
are not committed yet) every call reads. After a commit, concurrent calls with the same arguments read
once: one reads, the others wait for its answer (``Flights``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from kiln.store.flights import Flights

__all__ = ["Flights", "while_unchanged"]

R = TypeVar("R")
MAX_ENTRIES = 4096


def while_unchanged(function: Callable[..., R]) -> Callable[..., R]:
    """``function`` (positional, hashable arguments; an immutable answer) kept per database generation:
    the same object answered while the generation stays the same."""
    kept: dict[tuple[str, Hashable], tuple[Any, R]] = {}
    lock = threading.Lock()
    flights: Flights[R] = Flights()

    @functools.wraps(function)
    def wrapper(*args: Hashable) -> R:
        from kiln.home import database_url
        from kiln.store.generation import generation

        url = database_url()
        now = generation(url)
        if now is None:
            return function(*args)
        found = kept.get((url, args))
        if found is not None and found[0] == now:
            return found[1]

        def read() -> R:
            value = function(*args)
            with lock:
                if len(kept) >= MAX_ENTRIES:
                    kept.clear()
                kept[(url, args)] = (now, value)
            return value

        return flights.run((url, args, now), read)

    return wrapper
