"""Pins: blobs an in-progress write or build may reference; garbage collection never deletes them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.store import StorePin

DEFAULT_TTL = timedelta(hours=24)  # a crashed writer's pins lapse after this


def pin(region: str, digests: Iterable[str], holder: str, ttl: timedelta = DEFAULT_TTL) -> list[int]:
    # not synced by itself (durable=False): a pin guards against a gc running beside its writer, which
    # sees the commit at once; a crash that loses it takes the writer too (or, for an unpin, leaves a
    # pin that lapses with its ttl)
    now = utcnow()
    with session(durable=False) as db:
        rows = [
            StorePin(region=region, digest=d, holder=holder, created_at=now, expires_at=now + ttl)
            for d in digests
        ]
        db.add_all(rows)
        db.flush()
        return [row.id for row in rows]


def unpin(ids: Iterable[int]) -> None:
    ids = list(ids)
    if ids:
        with session(durable=False) as db:  # see pin()
            db.execute(delete(StorePin).where(StorePin.id.in_(ids)))


def unpin_holder(holder: str) -> int:
    """Drop every pin ``holder`` took; returns how many."""
    with session() as db:
        return db.execute(delete(StorePin).where(StorePin.holder == holder)).rowcount or 0


def holders(prefix: str) -> set[str]:
    """Holders of live pins whose name starts with ``prefix``."""
    with session() as db:
        rows = db.execute(select(StorePin.holder).where(StorePin.holder.like(prefix + "%")).distinct())
        return {row[0] for row in rows}


@contextmanager
def pinned(region: str, digests: Iterable[str], holder: str) -> Iterator[list[int]]:
    """Pin ``digests`` for the duration of the block (more can be appended via ``pin``)."""
    ids = pin(region, digests, holder)
    try:
        yield ids
    finally:
        unpin(ids)


def pinned_digests(region: str, db: Session | None = None) -> set[str]:
    """Digests with a live pin (pass ``db`` when already inside a transaction)."""
    if db is None:
        with session() as own:
            return pinned_digests(region, own)
    rows = db.execute(
        select(StorePin.digest).where(StorePin.region == region, StorePin.expires_at > utcnow())
    )
    return {row[0] for row in rows}
