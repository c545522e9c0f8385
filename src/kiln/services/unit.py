"""Plumbing shared by the resource services: sessions, content hashes, idempotency, ownership."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from kiln.errors import InvalidRequest, KilnError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

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


def owner_of(account: str) -> str:
    return MANAGED_OWNER if account == "aws" else account
