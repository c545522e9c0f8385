"""One token bucket for every AWS call a command makes: at most ``rate`` calls a second on average,
``burst`` at once, shared by every thread."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    def __init__(self, rate: float, burst: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = float(burst if burst is not None else max(1, int(rate)))
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = threading.Lock()
        self.taken = 0

    def take(self) -> None:
        """Wait until a token is there, then take it."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    self.taken += 1
                    return
                wait = (1 - self._tokens) / self.rate
            time.sleep(wait)
