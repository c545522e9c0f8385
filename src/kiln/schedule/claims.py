"""Exactly-once starts: a (job key, due time) pair can be claimed by one scheduler only, ever."""

from __future__ import annotations

from datetime import datetime

from kiln.db.base import utcnow

JOBS_VERSION = "jobs"


def claim_due_run(key: str, due_time: datetime, holder: str) -> bool:
    """Record that ``holder`` starts ``key`` for ``due_time``; False when it was already claimed."""
    from sqlalchemy.exc import IntegrityError

    from kiln.db.engine import session
    from kiln.db.tables.schedule import ScheduleClaim

    try:
        with session() as db:
            db.add(ScheduleClaim(key=key, due_time=due_time, claimed_by=holder, claimed_at=utcnow()))
            db.flush()
    except IntegrityError:
        return False
    return True


def last_claimed(keys: list[str] | None = None) -> dict[str, datetime]:
    """The latest claimed due time per job key (all keys when ``keys`` is None)."""
    from sqlalchemy import func, select

    from kiln.db.engine import session
    from kiln.db.tables.schedule import ScheduleClaim

    query = select(ScheduleClaim.key, func.max(ScheduleClaim.due_time)).group_by(ScheduleClaim.key)
    if keys is not None:
        query = query.where(ScheduleClaim.key.in_(keys))
    with session() as db:
        rows = db.execute(query).all()
    # max() bypasses the column type on SQLite; parse the stored text back to aware UTC.
    return {key: _as_utc(value) for key, value in rows}


def _as_utc(value: datetime | str) -> datetime:
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def prune_claims(older_than: datetime) -> int:
    """Forget claims due before ``older_than``, keeping each key's latest; returns rows deleted."""
    from sqlalchemy import delete, func, select
    from sqlalchemy.orm import aliased

    from kiln.db.engine import session
    from kiln.db.tables.schedule import ScheduleClaim

    other = aliased(ScheduleClaim)
    latest = select(func.max(other.due_time)).where(other.key == ScheduleClaim.key).scalar_subquery()
    with session() as db:
        result = db.execute(
            delete(ScheduleClaim).where(ScheduleClaim.due_time < older_than, ScheduleClaim.due_time < latest)
        )
        return int(result.rowcount or 0)


def jobs_version(name: str = JOBS_VERSION) -> int:
    """The counter that job sources bump when their jobs change (0 before the first bump)."""
    from kiln.db.engine import session
    from kiln.db.tables.schedule import ScheduleVersion

    with session() as db:
        row = db.get(ScheduleVersion, name)
        return row.version if row is not None else 0


def bump_jobs_version(name: str = JOBS_VERSION, db: object | None = None) -> None:
    """Tell schedulers that jobs changed; pass ``db`` to bump inside the caller's transaction."""
    from kiln.db.tables.schedule import ScheduleVersion

    def bump(s: object) -> None:
        row = s.get(ScheduleVersion, name)  # type: ignore[attr-defined]
        if row is None:
            s.add(ScheduleVersion(name=name, version=1))  # type: ignore[attr-defined]
        else:
            row.version += 1

    if db is not None:
        bump(db)
        return
    from kiln.db.engine import session

    with session() as s:
        bump(s)


def utc_now() -> datetime:
    return utcnow()
