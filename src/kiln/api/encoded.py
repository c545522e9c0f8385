"""Answers kept encoded: the bytes a read's answer was encoded to, answered again for the same request
(service, operation, account, region and every input member, page token and size included) while the
answer is made from the same kept objects (``protocol.Kept.sources``, compared by identity), so it is
invalidated exactly when those are: by a change to what they show, whoever committed it, or by the time
they hold until (a deprecation time coming). Each response gets its own request id, spliced into the kept
bytes where the encoding put a placeholder.

After a change, the concurrent requests that would each encode the same answer anew let one encode it
and wait for that one (``kiln.store.flights`` through the services). An entry lives at most
``ENTRY_SECONDS``, less than a page snapshot is reused (``paging.REUSE_SECONDS``), so a page token in
kept bytes names a snapshot that is still there.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from kiln.api.paging import REUSE_SECONDS
from kiln.api.protocol import HttpResponse
from kiln.services.common.unchanged import Flights

# Never in an answer by chance: 128 random bits, and only hex digits (escaped the same in XML and JSON).
PLACEHOLDER = f"kiln-request-id-{random.getrandbits(128):032x}"
_PLACEHOLDER = PLACEHOLDER.encode()
ENTRY_SECONDS = REUSE_SECONDS - 10.0
MAX_ENTRIES = 1024
MAX_BYTES = 64 << 20  # all the kept bytes together (an answer of 1,000 AMIs is about 1 MB)

Render = Callable[[dict[str, Any], str], HttpResponse]


@dataclass(frozen=True)
class _Entry:
    sources: tuple[object, ...]
    until: float  # time.monotonic()
    status: int
    headers: dict[str, str]
    head: bytes
    tail: bytes | None  # None: the body holds no request id

    @property
    def size(self) -> int:
        return len(self.head) + len(self.tail or b"")

    def holds(self, sources: tuple[object, ...], now: float) -> bool:
        return now < self.until and len(sources) == len(self.sources) and all(
            a is b for a, b in zip(sources, self.sources, strict=True))

    def response(self, request_id: str) -> HttpResponse:
        if self.tail is None:
            return HttpResponse(self.status, self.headers, self.head)
        # the id comes early in every answer: a few bytes joined, the rest sent as kept
        return HttpResponse(self.status, self.headers, self.head + request_id.encode(), self.tail)


_kept: dict[Hashable, _Entry] = {}
_kept_bytes = 0
_lock = threading.Lock()
_encoding: Flights[_Entry | None] = Flights()


def _frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value  # type: ignore[no-any-return]


def _key(request: tuple[str, str, str, str], params: dict[str, Any]) -> Hashable | None:
    try:
        key = (request, _frozen(params))
        hash(key)
    except TypeError:  # a value of a kind no client sends: answered, not kept
        return None
    return key


def respond(request: tuple[str, str, str, str], params: dict[str, Any], result: dict[str, Any],
            cut: Callable[[], dict[str, Any]], render: Render, request_id: str) -> HttpResponse:
    """The response to a read: ``render(cut(), request_id)``, or the bytes kept for the same request
    (``request``: service, operation, account, region) made from the same sources as ``result``."""
    sources = getattr(result, "sources", None)
    key = _key(request, params) if sources is not None else None
    if key is None:
        return render(cut(), request_id)
    entry = _kept.get(key)
    if entry is None or not entry.holds(sources, time.monotonic()):  # type: ignore[arg-type]
        # waiters hold ``sources`` too: their ids name these objects while the flight lasts
        flight = (key, tuple(id(source) for source in sources))  # type: ignore[union-attr]
        entry = _encoding.run(flight, lambda: _encode(key, sources, cut, render))  # type: ignore[arg-type]
        if entry is None:
            return render(cut(), request_id)
    return entry.response(request_id)


def _encode(key: Hashable, sources: tuple[object, ...], cut: Callable[[], dict[str, Any]],
            render: Render) -> _Entry | None:
    global _kept_bytes
    until = time.monotonic() + ENTRY_SECONDS
    response = render(cut(), PLACEHOLDER)
    parts = response.body.split(_PLACEHOLDER)
    if response.status != 200 or len(parts) > 2:
        return None
    entry = _Entry(sources, until, response.status, response.headers, parts[0],
                   parts[1] if len(parts) == 2 else None)
    with _lock:
        replaced = _kept.pop(key, None)
        _kept_bytes -= replaced.size if replaced is not None else 0
        if len(_kept) >= MAX_ENTRIES or _kept_bytes + entry.size > MAX_BYTES:
            _kept.clear()
            _kept_bytes = 0
        if entry.size <= MAX_BYTES:
            _kept[key] = entry
            _kept_bytes += entry.size
    return entry
