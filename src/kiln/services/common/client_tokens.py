"""Idempotency tokens of API requests (Image Builder's ``clientToken``, EC2's ``ClientToken``).

A token is the caller's, per account, region and service. The first request with a token reserves it
(with its operation and a fingerprint of its other parameters) and, when it succeeds, stores its answer:
a retry with the same request gets that answer and makes nothing new; the same token with another
request is ``IdempotentParameterMismatch``. A request that fails releases its token, so a retry runs
again. Tokens are forgotten after ``KEEP``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kiln.db.base import utcnow
from kiln.errors import Conflict
from kiln.services.common.unit import IdempotentParameterMismatch

KEEP = timedelta(days=7)
IN_FLIGHT_WAIT = 30.0  # seconds a retry waits for the first request with its token to finish
STALE = timedelta(minutes=15)  # a reservation this old without an answer: its process died


@dataclass(frozen=True)
class TokenKey:
    account_id: str
    region: str
    service: str
    token: str


def _jsonable(result: dict[str, Any]) -> dict[str, Any]:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return str(value)

    return dict(json.loads(json.dumps(result, default=default)))


def _reserve_or_replay(key: TokenKey, operation: str, fingerprint: str) -> tuple[bool, dict[str, Any] | None]:
    """(reserved by this call, the stored answer of an earlier request)."""
    from sqlalchemy import delete
    from sqlalchemy.exc import IntegrityError

    from kiln.db.engine import session
    from kiln.db.tables.requests import ClientToken

    now = utcnow()
    try:
        with session() as db:
            row = db.get(ClientToken, (key.account_id, key.region, key.service, key.token))
            if row is None:
                db.execute(delete(ClientToken).where(ClientToken.created_at < now - KEEP))
                db.add(ClientToken(account_id=key.account_id, region=key.region, service=key.service,
                                   token=key.token, operation=operation, fingerprint=fingerprint, result=None,
                                   created_at=now))
                return True, None
            if (row.operation, row.fingerprint) != (operation, fingerprint):
                raise IdempotentParameterMismatch(
                    f"the client token {key.token!r} was already used for a different {row.operation} request",
                    hint="use a new client token for a different request",
                )
            if row.result is None and row.created_at < now - STALE:
                row.created_at = now
                return True, None
            return False, row.result
    except IntegrityError:  # another request reserved the token between our read and our insert
        return False, None


def idempotent(key: TokenKey, operation: str, fingerprint: str,
               call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``call()``'s answer, once per token: a replay answers what the first request answered."""
    deadline = time.monotonic() + IN_FLIGHT_WAIT
    while True:
        reserved, stored = _reserve_or_replay(key, operation, fingerprint)
        if reserved:
            break
        if stored is not None:
            return stored
        if time.monotonic() > deadline:
            raise Conflict(f"a request with the client token {key.token!r} is still in progress",
                           hint="retry when it has finished")
        time.sleep(0.05)
    try:
        result = call()
    except BaseException:
        _release(key)
        raise
    _settle(key, _jsonable(result))
    return result


def _settle(key: TokenKey, result: dict[str, Any]) -> None:
    from kiln.db.engine import session
    from kiln.db.tables.requests import ClientToken

    with session() as db:
        row = db.get(ClientToken, (key.account_id, key.region, key.service, key.token))
        if row is not None:
            row.result = result


def _release(key: TokenKey) -> None:
    from kiln.db.engine import session
    from kiln.db.tables.requests import ClientToken

    with session() as db:
        row = db.get(ClientToken, (key.account_id, key.region, key.service, key.token))
        if row is not None and row.result is None:
            db.delete(row)
