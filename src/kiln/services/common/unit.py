"""Plumbing shared by the resource services: sessions, content hashes, idempotency, ownership."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from kiln.errors import InvalidRequest, KilnError
from kiln.model.shapes import Shape, new_client_token

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ShapeT = TypeVar("ShapeT", bound=Shape)
T = TypeVar("T")

MANAGED_OWNER = "Amazon"
IGNORED_IN_CONTENT = ("clientToken", "dryRun")


class IdempotentParameterMismatch(InvalidRequest):
    code = "IdempotentParameterMismatchException"


class DryRunOperation(KilnError):
    """Image Builder's answer to a successful dry run: the request is valid, nothing was created."""

    code = "DryRunOperationException"
    http_status = 412
    exit_code = 0


@contextmanager
def unit_of_work(db: Session | None = None) -> Iterator[Session]:
    """Use the caller's transaction when given one (``kiln apply``), else open one."""
    if db is not None:
        yield db
        return
    from kiln.db.engine import session

    with session() as own:
        yield own


def only_reading(work: Callable[[], T]) -> T:
    """``work()`` in units of work that only read (no write lock: they run beside a writer); when it
    turns out to write, the database refuses that before anything is written and it runs again in
    ordinary units of work. For work that reads (Describe/Get/List): it may run twice."""
    from kiln.db.engine import ReadOnlyViolation, read_only

    try:
        with read_only():
            return work()
    except ReadOnlyViolation:
        return work()


def steady_reading(work: Callable[[], T]) -> T:
    """:func:`only_reading` for one API read: while it only reads, each database's generation is asked
    once (``kiln.store.generation.steady``), so the answers kept per generation are all of one moment;
    when it turns out to write, it runs again as a writer without that."""
    from kiln.db.engine import ReadOnlyViolation, read_only
    from kiln.store.generation import steady

    try:
        with read_only(), steady():
            return work()
    except ReadOnlyViolation:
        return work()


def content_of(body: dict[str, Any], *extra_ignored: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in IGNORED_IN_CONTENT + extra_ignored}


def content_hash(content: Any) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_client_token(row: Any, new_hash: str, token: str) -> None:
    """A reused clientToken must come with the same request."""
    if row is not None and row.content_hash != new_hash:
        raise IdempotentParameterMismatch(
            f"clientToken {token!r} was already used for {row.arn} with different parameters",
            hint="use a new clientToken for a different request",
        )


def with_client_token(request: ShapeT) -> tuple[ShapeT, str]:
    """A Create request with its clientToken filled in (a new one when not given), and that token."""
    token = getattr(request, "clientToken", None) or new_client_token()
    return request.model_copy(update={"clientToken": token}), token


def replayed(
    db: Session, table: type[Any], token: str | None, digest: str, stored_hash: Callable[[Any], str] | None = None,
    *, account: str | None = None,
) -> Any:
    """The row an earlier request with this clientToken made (None for no or a new token); refused when
    that request differed. ``stored_hash`` gives a row's content hash where the row keeps none."""
    if not token:
        return None
    from sqlalchemy import select

    query = select(table).where(table.client_token == token)
    if account is not None:  # a token is its account's: another account's token of the same name is another
        query = query.where(table.account == account)
    previous = db.scalars(query).first()
    if previous is not None:
        from types import SimpleNamespace

        if stored_hash is not None:
            check_client_token(SimpleNamespace(arn=previous.arn, content_hash=stored_hash(previous)), digest, token)
        else:
            check_client_token(previous, digest, token)
    return previous


def owner_of(account: str) -> str:
    return MANAGED_OWNER if account == "aws" else account


def filter_entries(
    entries: list[dict[str, Any]], filters: list[dict[str, Any]] | None, allowed: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Image Builder list ``filters``: ``[{name, values}]``; an entry matches when, for every filter,
    its field equals one of the values (case-sensitive, as the API says)."""
    if not filters:
        return entries
    from kiln.errors import InvalidInput

    checked: list[tuple[str, set[str]]] = []
    for index, item in enumerate(filters):
        name, values = item.get("name"), item.get("values")
        if name not in allowed:
            raise InvalidInput(
                f"unknown filter name {name!r}",
                location=f"filters[{index}].name",
                hint=f"use one of {', '.join(allowed)}",
            )
        if not isinstance(values, list) or not values:
            raise InvalidInput("a filter needs a non-empty values list", location=f"filters[{index}].values")
        checked.append((name, {str(value) for value in values}))

    def matches(entry: dict[str, Any]) -> bool:
        for name, values in checked:
            field = "supportedOsVersions" if name == "supportedOsVersion" else name
            value = entry.get(field)
            present = {str(v) for v in value} if isinstance(value, list) else {str(value)}
            if not present & values:
                return False
        return True

    return [entry for entry in entries if matches(entry)]
