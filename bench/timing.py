"""Timing helpers the benches share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(call: Callable[[], Any], rounds: int = 3) -> tuple[float, Any]:
    """(the fastest of ``rounds`` calls in seconds, the last call's result)."""
    best, result = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - started)
    return best, result
