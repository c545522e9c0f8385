"""Paging of whole-list answers, for every protocol, by the service's paginator model.

A handler answers the whole list; this cuts the page the request asks for, with an opaque token that
carries the offset, a fingerprint of the operation, the caller's account and the rest of the request (a
token is refused for another request, another operation or another account) and the id of a snapshot:
the whole list the first page was cut from, kept in this process for ``SNAPSHOT_SECONDS``, so a walk
through the pages sees every item exactly once even while items come and go, and a page costs no more
than cutting it. A token whose snapshot is gone (expired, or another ``kiln serve`` process) pages the
list as it is now. The page size's range is the model's (``min``/``max`` of the limit member) or the
service's ``Limits``; a request without a size gets ``Limits.default`` items, or all of them when that
is None (EC2's describe calls).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, overload

from kiln.api.errors import Dialect
from kiln.api.model import operation, paginators

TOKEN_MARKER = "kiln1"
SNAPSHOT_SECONDS = 300.0
SNAPSHOTS_KEPT = 64
REUSE_SECONDS = SNAPSHOT_SECONDS / 2  # a page kept encoded lives shorter than this: its token stays good


@dataclass(frozen=True)
class Limits:
    low: int = 1
    high: int = 1000
    default: int | None = 25


class _Snapshots:
    """The whole answers pages were cut from, by id: at most ``SNAPSHOTS_KEPT``, each for ``SNAPSHOT_SECONDS``.

    An answer made from the same kept objects as the last one of its request (``Kept.sources``) is the
    same answer: it gets the same snapshot while that has at least ``REUSE_SECONDS`` left, so the first
    page's token, and the page, are the same bytes from request to request (``kiln.api.encoded``)."""

    def __init__(self) -> None:
        self._kept: OrderedDict[str, tuple[float, str, dict[str, Any]]] = OrderedDict()
        self._latest: dict[str, str] = {}  # fingerprint -> its last snapshot of a Kept answer
        self._lock = threading.Lock()

    def put(self, fingerprint: str, result: dict[str, Any]) -> str:
        sources = getattr(result, "sources", None)
        now = time.monotonic()
        with self._lock:
            if sources is not None:
                latest = self._latest.get(fingerprint)
                kept = self._kept.get(latest) if latest is not None else None
                if kept is not None and kept[0] - now >= REUSE_SECONDS and same_sources(kept[2], sources):
                    return latest  # type: ignore[return-value]
            snapshot = f"{random.getrandbits(64):016x}"  # unique, not secret: the fingerprint binds it
            self._kept[snapshot] = (now + SNAPSHOT_SECONDS, fingerprint, result)
            if sources is not None:
                if len(self._latest) >= SNAPSHOTS_KEPT * 4:
                    self._latest.clear()
                self._latest[fingerprint] = snapshot
            while len(self._kept) > SNAPSHOTS_KEPT:
                self._kept.popitem(last=False)
        return snapshot

    def get(self, snapshot: str, fingerprint: str) -> dict[str, Any] | None:
        with self._lock:
            kept = self._kept.get(snapshot)
            if kept is None or kept[0] < time.monotonic() or kept[1] != fingerprint:
                return None
            return kept[2]


SNAPSHOTS = _Snapshots()


class Shaped(Sequence[Any]):
    """A whole-list answer whose items take their wire shape only when read: ``shape(source)`` for each
    item a page holds, so cutting a page of 100 from 1,000 shapes 100 (and a snapshot keeps the sources)."""

    def __init__(self, sources: list[Any], shape: Callable[[Any], Any]) -> None:
        self._sources, self._shape = sources, shape

    def __len__(self) -> int:
        return len(self._sources)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._shape(source) for source in self._sources[index]]
        return self._shape(self._sources[index])


def _fingerprint(scope: list[str], params: dict[str, Any], token_key: str, limit_key: str) -> str:
    rest = {k: v for k, v in params.items() if k not in (token_key, limit_key)}
    return hashlib.sha256(json.dumps([scope, rest], sort_keys=True, default=str).encode()).hexdigest()[:16]


def _range(service: str, name: str, limit_key: str, limits: Limits) -> tuple[int, int]:
    shape = operation(service, name).input_shape
    member = shape.members.get(limit_key) if shape is not None else None
    metadata = member.metadata if member is not None else {}
    return int(metadata.get("min", limits.low)), int(metadata.get("max", limits.high))


def _start(encoded: str, token_key: str, fingerprint: str, dialect: Dialect) -> tuple[int, str]:
    """(offset, snapshot id) of a token kiln gave for this request."""
    try:
        marker, offset, theirs, snapshot = base64.urlsafe_b64decode(encoded.encode()).decode().split(":")
        start = int(offset)
    except (ValueError, UnicodeError):
        raise dialect.token(token_key, "is not a token kiln gave") from None
    if marker != TOKEN_MARKER or theirs != fingerprint or start < 0:
        raise dialect.token(token_key, "belongs to a different request")
    return start, snapshot


def _token(offset: int, fingerprint: str, snapshot: str) -> str:
    # Not base64 of a JSON object: botocore's paginators would take such a StartingToken for their own.
    return base64.urlsafe_b64encode(f"{TOKEN_MARKER}:{offset}:{fingerprint}:{snapshot}".encode()).decode()


def same_sources(result: dict[str, Any], sources: tuple[object, ...]) -> bool:
    """Whether ``result`` was made from exactly the objects ``sources`` (``protocol.Kept``)."""
    theirs = getattr(result, "sources", None)
    return theirs is not None and len(theirs) == len(sources) and all(
        a is b for a, b in zip(theirs, sources, strict=True))


def page(service: str, name: str, params: dict[str, Any], answer: Callable[[], dict[str, Any]], dialect: Dialect,
         limits: Limits, account: str = "") -> dict[str, Any]:
    """The page of ``answer()`` that ``params`` ask for (the whole answer for an operation without paging)."""
    return prepare(service, name, params, answer, dialect, limits, account)[1]()


@cache
def _paging(service: str, name: str, limits: Limits) -> tuple[str, str, str, str, int, int] | None:
    """(token, limit, result and output token members, lowest and highest page size) of a paged operation."""
    config = paginators(service).get(name)
    if not config or not isinstance(config.get("result_key"), str) or "limit_key" not in config:
        return None
    low, high = _range(service, name, config["limit_key"], limits)
    return config["input_token"], config["limit_key"], config["result_key"], config["output_token"], low, high


def prepare(service: str, name: str, params: dict[str, Any], answer: Callable[[], dict[str, Any]],
            dialect: Dialect, limits: Limits,
            account: str = "") -> tuple[dict[str, Any], Callable[[], dict[str, Any]]]:
    """(the whole answer the page ``params`` ask for is cut from — a snapshot's, or ``answer()`` —, what
    cuts the page from it): the request checked first, the page cut only when asked for."""
    found = _paging(service, name, limits)
    if found is None:
        whole = answer()
        return whole, lambda: whole
    token_key, limit_key, key, output_key, low, high = found
    limit = params.get(limit_key)
    if limit is not None and (not isinstance(limit, int) or not low <= limit <= high):
        raise dialect.limit(limit_key, low, high)
    token = params.get(token_key)
    fingerprint = ""
    start, snapshot = 0, ""
    if token:
        fingerprint = _fingerprint([service, name, account], params, token_key, limit_key)
        start, snapshot = _start(token, token_key, fingerprint, dialect)
    result = SNAPSHOTS.get(snapshot, fingerprint) if snapshot else None
    if result is None:
        result = answer()
        snapshot = ""

    def cut() -> dict[str, Any]:
        items = result.get(key) or []
        size = limit if limit is not None else (limits.default or max(len(items), 1))
        paged = {**result, key: items[start : start + size]}
        paged.pop(output_key, None)
        if start + size < len(items):
            mark = fingerprint or _fingerprint([service, name, account], params, token_key, limit_key)
            paged[output_key] = _token(start + size, mark, snapshot or SNAPSHOTS.put(mark, result))
        return paged

    return result, cut
