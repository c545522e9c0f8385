"""Pipeline schedules: Image Builder's ``cron(...)`` expressions in an IANA timezone.

The parser is :func:`kiln.schedule.cron.parse` (the scheduler's). Until that module is installed a
stand-in over ``croniter`` reads the same six-field form (minute hour day-of-month month day-of-week
year, day-of-week 1-7 = SUN-SAT, ``?``, ``L``, ``W``, ``#``) so that schedules can be validated and
previewed.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiln.errors import InvalidInput, KilnError

DEFAULT_TIMEZONE = "Etc/UTC"
EXPRESSION_FIELD = "schedule.scheduleExpression"


class CronSchedule(Protocol):
    def next_after(self, when: datetime, tz: Any) -> datetime: ...

    def next_times(self, after: datetime, tz: Any, n: int) -> list[datetime]: ...


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone of a schedule (``Etc/UTC`` when none is given)."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"{name!r} is not an IANA timezone", location="schedule.timezone", hint="e.g. Etc/UTC, Europe/Paris"
        ) from None


def parse(expression: str) -> CronSchedule:
    """A schedule object for ``expression``; InvalidInput naming the field when it is not valid."""
    try:
        from kiln.schedule import cron  # type: ignore[attr-defined]
    except ImportError:
        return _CroniterSchedule(expression)
    try:
        return cron.parse(expression)  # type: ignore[no-any-return]
    except KilnError as error:
        raise InvalidInput(error.message, location=EXPRESSION_FIELD, hint=error.hint) from None
    except ValueError as error:
        raise InvalidInput(str(error), location=EXPRESSION_FIELD) from None


def next_times(expression: str, timezone: str | None, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` run times strictly after ``after``."""
    return parse(expression).next_times(after, zone(timezone), count)


def next_after(expression: str, timezone: str | None, after: datetime) -> datetime:
    return parse(expression).next_after(after, zone(timezone))


_WRAPPED = re.compile(r"^cron\((?P<body>[^()]*)\)$")
_DOW_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class _CroniterSchedule:
    """Stand-in parser until ``kiln.schedule.cron`` lands: AWS six-field cron translated for croniter."""

    def __init__(self, expression: str) -> None:
        match = _WRAPPED.match(expression.strip())
        if not match:
            raise InvalidInput(
                f"{expression!r} is not a cron expression",
                location=EXPRESSION_FIELD,
                hint="use cron(minute hour day-of-month month day-of-week year), e.g. cron(0 10 * * ? *)",
            )
        fields = match.group("body").split()
        if len(fields) not in (5, 6):
            raise InvalidInput(
                f"{expression!r} has {len(fields)} fields, expected 6", location=EXPRESSION_FIELD
            )
        minute, hour, dom, month, dow, *rest = fields
        year = rest[0] if rest else "*"
        if dom != "?" and dow != "?" and "*" not in (dom, dow):
            raise InvalidInput(
                "give either day-of-month or day-of-week; the other one must be ?", location=EXPRESSION_FIELD
            )
        parts = [minute, hour, dom.replace("?", "*"), month, self._dow(dow)]
        self.text = " ".join(parts) if year == "*" else " ".join([*parts, "0", year])
        try:
            from croniter import croniter

            croniter(self.text)
        except Exception as error:  # croniter raises several unrelated classes
            raise InvalidInput(f"{expression!r} is not valid: {error}", location=EXPRESSION_FIELD) from None

    @staticmethod
    def _dow(value: str) -> str:
        def one(token: str) -> str:
            if token in ("*", "?"):
                return "*"
            if token == "L":
                return "6"
            if token.endswith("L"):
                return "L" + one(token[:-1])
            if "#" in token:
                day, nth = token.split("#", 1)
                return f"{one(day)}#{nth}"
            if "/" in token:
                start, step = token.split("/", 1)
                return f"{one(start)}/{step}"
            if "-" in token:
                low, high = token.split("-", 1)
                return f"{one(low)}-{one(high)}"
            if token.isdigit():
                number = int(token)
                if not 1 <= number <= 7:
                    raise InvalidInput(f"day-of-week {token} is not 1-7", location=EXPRESSION_FIELD)
                return str(number - 1)
            if token.upper() in _DOW_NAMES:
                return str(_DOW_NAMES.index(token.upper()))
            raise InvalidInput(f"day-of-week {token!r} is not valid", location=EXPRESSION_FIELD)

        return ",".join(one(token) for token in value.split(","))

    def next_after(self, when: datetime, tz: Any) -> datetime:
        from croniter import croniter

        # From the start of the minute: croniter answers strictly after it, and runs are per minute.
        local = when.astimezone(tz).replace(second=0, microsecond=0)
        result: datetime = croniter(self.text, local).get_next(datetime)
        return result

    def next_times(self, after: datetime, tz: Any, n: int) -> list[datetime]:
        times: list[datetime] = []
        moment = after
        for _ in range(n):
            moment = self.next_after(moment, tz)
            times.append(moment)
        return times
