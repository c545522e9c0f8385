"""Leases: named, expiring locks in the database.

``acquire`` is one transaction (``BEGIN IMMEDIATE`` on SQLite, so concurrent callers queue):
insert the lease, or take it over when expired or when its holder is a process of this host that is
gone, or renew it when already ours. Holders are ``host:pid[:anything]`` (``new_holder``).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from kiln.db.base import utcnow
from kiln.errors import Conflict


def new_holder() -> str:
    """A holder name unique to this call in this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_alive(holder: str) -> bool:
    """False only when the holder is a process of this host that no longer exists."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # cannot tell; trust the expiry time
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire(name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None) -> bool:
    """Take the lease ``name`` for ``holder`` for ``ttl_seconds``; False when someone else holds it."""
    from sqlalchemy.exc import IntegrityError

    from kiln.db.engine import session
    from kiln.db.tables.leases import Lease

    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_seconds)
    try:
        with session() as db:
            lease = db.get(Lease, name)
            if lease is None:
                db.add(Lease(name=name, holder=holder, expires_at=expires))
                return True
            if lease.holder != holder and lease.expires_at > now and holder_alive(lease.holder):
                return False
            lease.holder = holder
            lease.expires_at = expires
            return True
    except IntegrityError:  # another process created the lease between our read and our insert
        return False


def renew(name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None) -> bool:
    """Extend a lease we hold (even if it lapsed, as long as nobody took it); False otherwise."""
    from kiln.db.engine import session
    from kiln.db.tables.leases import Lease

    now = now or utcnow()
    with session() as db:
        lease = db.get(Lease, name)
        if lease is None or lease.holder != holder:
            return False
        lease.expires_at = now + timedelta(seconds=ttl_seconds)
        return True


def release(name: str, holder: str) -> bool:
    """Drop a lease we hold; False when it is not ours (or gone)."""
    from kiln.db.engine import session
    from kiln.db.tables.leases import Lease

    with session() as db:
        lease = db.get(Lease, name)
        if lease is None or lease.holder != holder:
            return False
        db.delete(lease)
        return True


def holder_of(name: str, *, now: datetime | None = None) -> str | None:
    """Who holds the lease now (None when free or expired)."""
    from kiln.db.engine import session
    from kiln.db.tables.leases import Lease

    now = now or utcnow()
    with session() as db:
        lease = db.get(Lease, name)
        return lease.holder if lease is not None and lease.expires_at > now else None


@contextmanager
def held(name: str, holder: str, ttl_seconds: float) -> Iterator[None]:
    """Hold a lease for the ``with`` block; raises Conflict when another holder has it."""
    if not acquire(name, holder, ttl_seconds):
        raise Conflict(f"{name} is held by {holder_of(name) or 'another process'}", hint="try again when it expires")
    try:
        yield
    finally:
        release(name, holder)
