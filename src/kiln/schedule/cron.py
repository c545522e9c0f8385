"""AWS ``cron(...)`` expressions (EventBridge / Image Builder syntax), parsed and evaluated.

Six fields: ``minutes hours day-of-month month day-of-week year``. Exactly one of the two day
fields must be ``?``. Day-of-week is 1-7 with 1 = SUN (or SUN-SAT); months 1-12 or JAN-DEC;
years 1970-2199. Special forms: ``L`` (last day of month; alone in day-of-week it is SAT, the
last day of the week), ``LW`` (last weekday of the month), ``15W`` (weekday nearest the 15th,
never leaving the month), ``5L`` (last Thursday), ``3#2`` (second Tuesday).

croniter was evaluated: it numbers weekdays 0-6, has no ``W`` and no ``?`` exclusivity rule and
only years up to 2099, so the AWS semantics are implemented here. The next time is found by
walking the sorted value lists year → month → day → hour → minute, which stops at the first
match: a handful of steps, never a minute-by-minute scan.

Time zones (IANA, via zoneinfo) follow EventBridge Scheduler: a wall time that does not exist
(spring forward) is skipped; an ambiguous wall time (fall back) runs once, at its first
occurrence.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiln.errors import InvalidInput

FIELDS = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_BOUNDS = {
    "minutes": (0, 59),
    "hours": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (1, 7),
    "year": (1970, 2199),
}
_MONTHS = {name: i for i, name in enumerate(calendar.month_abbr) if name}
_MONTHS = {k.upper(): v for k, v in _MONTHS.items()}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_NAMES = {"month": _MONTHS, "day-of-week": _DAYS}
_ALLOWED = {
    "minutes": set(",-*/"),
    "hours": set(",-*/"),
    "day-of-month": set(",-*?/LW"),
    "month": set(",-*/"),
    "day-of-week": set(",-*?L#"),
    "year": set(",-*/"),
}
_WRAPPED = re.compile(r"^\s*cron\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)
LOCATION = "scheduleExpression"


def _fail(field_name: str, text: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{field_name} field {text!r}: {problem}", location=LOCATION)


def resolve_timezone(name: str | None) -> ZoneInfo:
    """An IANA time zone by name (``None`` or empty means UTC)."""
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInput(
            f"unknown time zone {name!r}",
            location="timezone",
            hint="use an IANA name such as Etc/UTC or America/Los_Angeles",
        ) from error


@dataclass(frozen=True)
class _DaySpec:
    """The day fields: either day-of-month or day-of-week constraints (the other is ``?``)."""

    by_month_day: bool
    values: frozenset[int] = frozenset()
    last_day: bool = False  # L (day-of-month)
    last_weekday: bool = False  # LW
    nearest_weekday: tuple[int, ...] = ()  # nW
    last_of_week: frozenset[int] = frozenset()  # nL (day-of-week)
    nth: tuple[tuple[int, int], ...] = ()  # (day, k) for day#k

    def days(self, year: int, month: int) -> list[int]:
        first_weekday, length = calendar.monthrange(year, month)
        found: set[int] = set()
        if self.by_month_day:
            found.update(d for d in self.values if d <= length)
            if self.last_day:
                found.add(length)
            if self.last_weekday:
                found.add(_nearest_weekday(year, month, length, length))
            for day in self.nearest_weekday:
                if day <= length:
                    found.add(_nearest_weekday(year, month, day, length))
            return sorted(found)
        # AWS day-of-week d (1 = SUN) of the 1st of the month; Python weekday: MON = 0.
        first = (first_weekday + 1) % 7 + 1
        for dow in self.values:
            start = 1 + (dow - first) % 7
            found.update(range(start, length + 1, 7))
        for dow in self.last_of_week:
            start = 1 + (dow - first) % 7
            found.add(start + 7 * ((length - start) // 7))
        for dow, k in self.nth:
            day = 1 + (dow - first) % 7 + 7 * (k - 1)
            if day <= length:
                found.add(day)
        return sorted(found)


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int:
    weekday = calendar.weekday(year, month, day)
    if weekday == 5:  # Saturday: Friday before, or Monday after when the 1st
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: Monday after, or Friday before when the last day
        return day + 1 if day < length else day - 2
    return day


def _number(field_name: str, item: str, token: str) -> int:
    names = _NAMES.get(field_name, {})
    if token.upper() in names:
        return names[token.upper()]
    if not token.isdigit():
        raise _fail(field_name, item, f"{token!r} is not a number" + (" or a name" if names else ""))
    value = int(token)
    low, high = _BOUNDS[field_name]
    if not low <= value <= high:
        raise _fail(field_name, item, f"{value} is outside {low}-{high}")
    return value


def _values(field_name: str, item: str) -> list[int]:
    """One comma-separated item of the plain forms: ``*``, ``n``, ``a-b``, with ``/step``."""
    low, high = _BOUNDS[field_name]
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise _fail(field_name, item, "the step after '/' must be a positive number")
        step = int(step_text)
    if base == "*":
        start, end = low, high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = _number(field_name, item, first), _number(field_name, item, last)
        if start > end:
            raise _fail(field_name, item, f"range start {first} is after its end {last}")
    else:
        start = _number(field_name, item, base)
        end = high if slash else start
    return list(range(start, end + 1, step))


def _plain(field_name: str, text: str) -> list[int]:
    bad = {c for c in text if not c.isalnum()} - _ALLOWED[field_name]
    if bad:
        raise _fail(field_name, text, f"{''.join(sorted(bad))!r} is not allowed in this field")
    if text == "?":
        raise _fail(field_name, text, "'?' is only allowed in day-of-month or day-of-week")
    found: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _fail(field_name, text, "empty list item")
        found.update(_values(field_name, item))
    return sorted(found)


def _month_days(text: str) -> _DaySpec:
    name = "day-of-month"
    bad = {c for c in text if not c.isalnum()} - _ALLOWED[name]
    if bad or re.search(r"[^0-9LW,\-*/]", text.upper()):
        raise _fail(name, text, "allowed are numbers 1-31 and , - * / L W")
    values: set[int] = set()
    last = last_weekday = False
    nearest: list[int] = []
    for item in text.upper().split(","):
        if item == "L":
            last = True
        elif item == "LW":
            last_weekday = True
        elif item.endswith("W"):
            nearest.append(_number(name, item, item[:-1]))
        elif "L" in item or "W" in item:
            raise _fail(name, text, f"{item!r}: L and W are written 'L', 'LW' or 'nW'")
        elif not item:
            raise _fail(name, text, "empty list item")
        else:
            values.update(_values(name, item))
    return _DaySpec(True, frozenset(values), last, last_weekday, tuple(nearest))


def _week_days(text: str) -> _DaySpec:
    name = "day-of-week"
    values: set[int] = set()
    last_of: set[int] = set()
    nth: list[tuple[int, int]] = []
    bad = {c for c in text if not c.isalnum()} - _ALLOWED[name]
    if bad:
        raise _fail(name, text, f"{''.join(sorted(bad))!r} is not allowed in this field")
    for item in text.upper().split(","):
        if not item:
            raise _fail(name, text, "empty list item")
        if item == "L":
            values.add(7)  # the last day of the week: Saturday
        elif "#" in item:
            day, _, k = item.partition("#")
            if not k.isdigit() or not 1 <= int(k) <= 5:
                raise _fail(name, text, f"{item!r}: the number after '#' must be 1-5")
            nth.append((_number(name, item, day), int(k)))
        elif item.endswith("L") and item not in _DAYS:
            last_of.add(_number(name, item, item[:-1]))
        else:
            values.update(_values(name, item))
    return _DaySpec(False, frozenset(values), last_of_week=frozenset(last_of), nth=tuple(nth))


@dataclass(frozen=True)
class CronExpression:
    """A parsed AWS cron expression; see the module docstring for the rules."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...]
    day_spec: _DaySpec
    _day_cache: dict[tuple[int, int], list[int]] = field(default_factory=dict, compare=False, repr=False)

    def _days(self, year: int, month: int) -> list[int]:
        key = (year, month)
        days = self._day_cache.get(key)
        if days is None:
            if len(self._day_cache) > 4096:
                self._day_cache.clear()
            days = self._day_cache[key] = self.day_spec.days(year, month)
        return days

    def _walk(self, start: datetime, forward: bool) -> datetime | None:
        """The first matching wall time at or after (or at or before) ``start``, minute precision."""

        def choices(values: Sequence[int], bound: int, tight: bool) -> Sequence[int]:
            if not tight:
                return values if forward else values[::-1]
            if forward:
                return values[bisect_left(values, bound) :]
            return values[: bisect_right(values, bound)][::-1]

        for year in choices(self.years, start.year, True):
            tight_year = year == start.year
            for month in choices(self.months, start.month, tight_year):
                tight_month = tight_year and month == start.month
                for day in choices(self._days(year, month), start.day, tight_month):
                    tight_day = tight_month and day == start.day
                    for hour in choices(self.hours, start.hour, tight_day):
                        minutes = choices(self.minutes, start.minute, tight_day and hour == start.hour)
                        if minutes:
                            return datetime(year, month, day, hour, minutes[0])
        return None

    def next_after(self, when: datetime, tz: ZoneInfo | None = None) -> datetime | None:
        """The first run strictly after ``when`` (aware), in UTC; None when the years run out."""
        tz = tz or ZoneInfo("UTC")
        when = _aware(when)
        local = when.astimezone(tz)
        wall = local.replace(tzinfo=None, second=0, microsecond=0, fold=0)
        step = timedelta(minutes=1)
        while True:
            candidate = self._walk(wall, forward=True)
            if candidate is None:
                return None
            instant = _instant(candidate, tz)
            if instant is not None and instant > when:
                return instant
            wall = candidate + step

    def latest_at_or_before(self, when: datetime, tz: ZoneInfo | None = None) -> datetime | None:
        """The last run at or before ``when`` (aware), in UTC; None when there is none."""
        tz = tz or ZoneInfo("UTC")
        when = _aware(when)
        local = when.astimezone(tz)
        wall = local.replace(tzinfo=None, second=0, microsecond=0, fold=0)
        if local.fold:  # in the repeated hour: first occurrences up to the shift may be earlier
            wall += local.replace(fold=0).utcoffset() - local.utcoffset()  # type: ignore[operator]
        step = timedelta(minutes=1)
        while True:
            candidate = self._walk(wall, forward=False)
            if candidate is None:
                return None
            instant = _instant(candidate, tz)
            if instant is not None and instant <= when:
                return instant
            wall = candidate - step

    def next_times(self, after: datetime, tz: ZoneInfo | None = None, n: int = 5) -> list[datetime]:
        times: list[datetime] = []
        current = _aware(after)
        for _ in range(n):
            found = self.next_after(current, tz)
            if found is None:
                break
            times.append(found)
            current = found
        return times


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("cron evaluation needs an aware datetime")
    return when


def _instant(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """The UTC instant of a wall time (first occurrence); None when the wall time does not exist."""
    instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != wall:
        return None
    return instant


def parse(expr: str) -> CronExpression:
    """Parse ``cron(m h dom mon dow year)`` (the ``cron(...)`` wrapper is optional)."""
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidInput("empty schedule expression", location=LOCATION)
    text = expr.strip()
    wrapped = _WRAPPED.match(text)
    if wrapped:
        text = wrapped.group(1)
    elif text.lower().startswith("rate("):
        raise InvalidInput(
            "rate() expressions are not supported by Image Builder schedules",
            location=LOCATION,
            hint="use cron(minutes hours day-of-month month day-of-week year)",
        )
    parts = text.split()
    if len(parts) != 6:
        raise InvalidInput(
            f"a cron expression has 6 fields, {expr!r} has {len(parts)}",
            location=LOCATION,
            hint="cron(minutes hours day-of-month month day-of-week year), e.g. cron(0 12 * * ? *)",
        )
    minute, hour, dom, month, dow, year = parts
    if (dom == "?") == (dow == "?"):
        problem = "both are '?'" if dom == "?" else "both are set"
        raise InvalidInput(
            f"day-of-month {dom!r} and day-of-week {dow!r}: {problem}; exactly one must be '?'",
            location=LOCATION,
            hint="e.g. cron(0 12 * * ? *) daily, cron(0 12 ? * MON *) on Mondays",
        )
    day_spec = _month_days(dom) if dow == "?" else _week_days(dow)
    return CronExpression(
        text=f"cron({' '.join(parts)})",
        minutes=tuple(_plain("minutes", minute)),
        hours=tuple(_plain("hours", hour)),
        months=tuple(_plain("month", month)),
        years=tuple(_plain("year", year)),
        day_spec=day_spec,
    )
