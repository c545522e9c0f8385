"""A memo of recent answers for ``seconds``: what every request asks the database the same way (the
secret of its access key, whether its region exists) is read once per key and period, not per request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
MAX_ENTRIES = 4096


class Recent(Generic[V]):
    def __init__(self, seconds: float, lookup: Callable[[Hashable], V]) -> None:
        self.seconds = seconds
        self.lookup = lookup
        self._kept: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def __call__(self, key: Hashable) -> V:
        now = time.monotonic()
        kept = self._kept.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        value = self.lookup(key)  # an exception is not kept: the next request asks again
        with self._lock:
            if len(self._kept) >= MAX_ENTRIES:
                self._kept.clear()
            self._kept[key] = (now + self.seconds, value)
        return value
