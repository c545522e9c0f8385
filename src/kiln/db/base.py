"""The declarative base every kiln table derives from."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, MetaData
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The real time: when things happen (records, leases, events)."""
    return datetime.now(UTC)


CLOCK_ENV = "KILN_CLOCK"
_OFFSET = re.compile(r"^([+-])(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def clock_now() -> datetime:
    """The one clock policies judge ages against (allowed images, audits): the real time, unless
    ``KILN_CLOCK`` says "as of" — an ISO 8601 time (``2027-01-31T00:00:00Z``) or an offset from the real
    time (``+31d``, ``-12h``, ``+2w``, ``+90m``), so tests and demos can move time without waiting."""
    setting = os.environ.get(CLOCK_ENV, "").strip()
    if not setting:
        return utcnow()
    offset = _OFFSET.match(setting)
    if offset:
        sign, number, unit = offset.groups()
        delta = timedelta(**{_UNITS[unit]: int(number)})
        return utcnow() + (delta if sign == "+" else -delta)
    try:
        moment = datetime.fromisoformat(setting.replace("Z", "+00:00"))
    except ValueError:
        from kiln.errors import InvalidInput

        raise InvalidInput(f"{setting!r} is neither an ISO 8601 time nor an offset like +31d", location=CLOCK_ENV,
                           hint="e.g. KILN_CLOCK=2027-01-31T00:00:00Z or KILN_CLOCK=+31d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
