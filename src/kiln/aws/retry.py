"""Retrying AWS calls that failed for a reason that passes: throttling, limits, server errors, a
dropped connection. Exponential backoff with full jitter, capped; anything else fails at once."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from kiln.aws.errors import error_code, http_status

T = TypeVar("T")

RETRYABLE_CODES = frozenset({
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ConcurrentLimitExceededException",
    "InternalServerException",
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
})


def is_retryable(error: BaseException) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ReadTimeoutError

    if isinstance(error, BotoConnectionError | ReadTimeoutError):
        return True
    return error_code(error) in RETRYABLE_CODES or http_status(error) >= 500


@dataclass(frozen=True)
class Backoff:
    attempts: int = 8  # tries in all, the first included
    base: float = 0.1  # seconds before the first retry (at most; jitter draws below it)
    cap: float = 10.0

    def delay(self, retry: int) -> float:
        return random.uniform(0, min(self.cap, self.base * (2**retry)))


def with_retries(call: Callable[[], T], backoff: Backoff = Backoff(),
                 on_retry: Callable[[BaseException], None] | None = None) -> T:
    """``call()``, retried per ``backoff`` while it fails with a retryable error."""
    retry = 0
    while True:
        try:
            return call()
        except Exception as error:
            retry += 1
            if retry >= backoff.attempts or not is_retryable(error):
                raise
            if on_retry is not None:
                on_retry(error)
            time.sleep(backoff.delay(retry - 1))
