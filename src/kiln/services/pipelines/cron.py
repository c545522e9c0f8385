"""Pipeline schedules: Image Builder's ``cron(...)`` expressions in an IANA timezone.

Parsing and evaluation are the scheduler's (:mod:`kiln.schedule.cron`); this module names the
pipeline's fields in errors and gives times in the pipeline's own timezone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiln.errors import InvalidInput, KilnError

DEFAULT_TIMEZONE = "Etc/UTC"
EXPRESSION_FIELD = "schedule.scheduleExpression"


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone of a schedule (``Etc/UTC`` when none is given)."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"{name!r} is not an IANA timezone", location="schedule.timezone", hint="e.g. Etc/UTC, Europe/Paris"
        ) from None


def parse(expression: str) -> Any:
    """The parsed expression; InvalidInput naming the pipeline's field when it is not valid."""
    from kiln.schedule import cron

    text = expression.strip()
    if not (text.startswith("cron(") and text.endswith(")")):
        raise InvalidInput(
            f"{expression!r} is not a schedule expression", location=EXPRESSION_FIELD,
            hint="Image Builder schedules are cron(minutes hours day-of-month month day-of-week year)",
        )
    try:
        return cron.parse(expression)
    except KilnError as error:
        raise InvalidInput(error.message, location=EXPRESSION_FIELD, hint=error.hint) from None


def next_times(expression: str, timezone: str | None, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` run times strictly after ``after``, in the schedule's timezone."""
    tz = zone(timezone)
    return [moment.astimezone(tz) for moment in parse(expression).next_times(after, tz, count)]


def next_after(expression: str, timezone: str | None, after: datetime) -> datetime | None:
    tz = zone(timezone)
    moment = parse(expression).next_after(after, tz)
    return None if moment is None else moment.astimezone(tz)
