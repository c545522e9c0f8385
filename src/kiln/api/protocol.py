"""What every wire protocol module offers the app, and what it hands to and gets from one.

A protocol module (``rest_json``, ``query``, ``json_protocol``) has four functions: ``family`` (the
service's row in ``errors.AUTH_ERRORS``), ``read`` (which operation a request is and its input, by member
names), ``success`` (an answer) and ``failure`` (an error in the protocol's envelope).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kiln.api.errors import ApiError, Dialect
    from kiln.api.paging import Limits
    from kiln.api.sigv4 import Caller


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # as sent, still percent-encoded
    query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    # More of the body, sent after ``body`` as it is: bytes kept for many responses (``kiln.api.encoded``)
    # are not copied into each response's own.
    tail: bytes = b""


class Wire(Protocol):
    def family(self, service: str) -> str: ...

    def read(self, service: str, dialect: Dialect, request: HttpRequest) -> tuple[str, dict[str, Any]]: ...

    def success(self, service: str, operation: str, result: dict[str, Any], request_id: str) -> HttpResponse: ...

    def failure(self, service: str, error: ApiError, request_id: str) -> HttpResponse: ...


Handler = Callable[[dict[str, Any], "Caller"], dict[str, Any]]


class Kept(dict[str, Any]):
    """A read's answer made from objects the services keep while the store is unchanged, ``sources``
    (a change to what they show makes new objects): the same request answered from the same objects,
    compared by identity, is the same answer, so the bytes it was encoded to serve again
    (``kiln.api.encoded``). Members other than the sources' must not vary (a ``requestId`` is the
    request's own, put in by the protocol)."""

    __slots__ = ("sources",)

    def __init__(self, answer: dict[str, Any], sources: tuple[object, ...]) -> None:
        super().__init__(answer)
        self.sources = sources


@dataclass(frozen=True)
class Service:
    """One AWS service kiln answers: its signing name (also its botocore model's name), wire protocol,
    error dialect, page sizes and operations."""

    name: str
    wire: Wire
    dialect: Dialect
    limits: Limits
    handlers: Mapping[str, Handler]
    regional: bool = True  # the credential scope's region must be a kiln region
    # What every operation's input must pass before its handler runs (e.g. ARNs of the caller's region).
    precheck: Callable[[dict[str, Any], Caller], None] | None = None
