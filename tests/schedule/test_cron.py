"""AWS cron expressions: expected times worked out by hand from the calendar, not by the code."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kiln.errors import InvalidInput
from kiln.schedule.cron import parse, resolve_timezone


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


NY = "America/New_York"
BERLIN = "Europe/Berlin"

# (expression, time zone, after, expected next run in UTC)
NEXT = [
    ("cron(0 12 * * ? *)", None, utc(2026, 1, 1), utc(2026, 1, 1, 12)),
    ("cron(0 12 * * ? *)", None, utc(2026, 1, 1, 12), utc(2026, 1, 2, 12)),
    ("cron(0/15 * * * ? *)", None, utc(2026, 1, 1, 10, 7), utc(2026, 1, 1, 10, 15)),
    ("cron(0/15 * * * ? *)", None, utc(2026, 1, 1, 10, 45), utc(2026, 1, 1, 11, 0)),
    ("cron(5/20 * * * ? *)", None, utc(2026, 1, 1, 10, 26), utc(2026, 1, 1, 10, 45)),
    ("cron(10,20,40 8-10 * * ? *)", None, utc(2026, 1, 1, 10, 41), utc(2026, 1, 2, 8, 10)),
    ("cron(0 0 L * ? *)", None, utc(2026, 2, 10), utc(2026, 2, 28)),
    ("cron(0 0 L * ? *)", None, utc(2026, 2, 28), utc(2026, 3, 31)),
    ("cron(0 0 L 2 ? *)", None, utc(2027, 3, 1), utc(2028, 2, 29)),
    ("cron(0 0 29 2 ? *)", None, utc(2026, 1, 1), utc(2028, 2, 29)),
    ("cron(0 9 LW * ? *)", None, utc(2026, 5, 1), utc(2026, 5, 29, 9)),  # May 31 is a Sunday
    ("cron(0 9 LW * ? *)", None, utc(2026, 1, 1), utc(2026, 1, 30, 9)),  # Jan 31 is a Saturday
    ("cron(0 9 15W * ? *)", None, utc(2026, 2, 1), utc(2026, 2, 16, 9)),  # Sunday -> Monday
    ("cron(0 9 15W * ? *)", None, utc(2026, 8, 1), utc(2026, 8, 14, 9)),  # Saturday -> Friday
    ("cron(0 9 1W * ? *)", None, utc(2026, 7, 2), utc(2026, 8, 3, 9)),  # Sat 1st -> Monday 3rd
    ("cron(0 9 31W * ? *)", None, utc(2026, 5, 1), utc(2026, 5, 29, 9)),  # Sun last day -> Friday
    ("cron(0 9 31W * ? *)", None, utc(2026, 2, 1), utc(2026, 3, 31, 9)),  # no 31st in February
    ("cron(0 10 ? * 6#3 *)", None, utc(2026, 1, 1), utc(2026, 1, 16, 10)),  # third Friday
    ("cron(0 10 ? * 3#2 *)", None, utc(2026, 2, 1), utc(2026, 2, 10, 10)),  # second Tuesday
    ("cron(0 10 ? * 2#5 *)", None, utc(2026, 1, 1), utc(2026, 3, 30, 10)),  # fifth Monday
    ("cron(0 10 ? * 5L *)", None, utc(2026, 1, 1), utc(2026, 1, 29, 10)),  # last Thursday
    ("cron(0 10 ? * 6L *)", None, utc(2026, 2, 1), utc(2026, 2, 27, 10)),  # last Friday
    ("cron(0 10 ? * 2L *)", None, utc(2026, 8, 1), utc(2026, 8, 31, 10)),  # last Monday
    ("cron(0 10 ? * L *)", None, utc(2026, 1, 1), utc(2026, 1, 3, 10)),  # L = Saturday
    ("cron(0 8 ? * MON-FRI *)", None, utc(2026, 1, 2, 9), utc(2026, 1, 5, 8)),
    ("cron(0 8 ? * SUN,SAT *)", None, utc(2026, 1, 5), utc(2026, 1, 10, 8)),
    ("cron(0 8 ? * 1 *)", None, utc(2026, 1, 5), utc(2026, 1, 11, 8)),  # 1 = Sunday
    ("cron(0 8 ? * 7 *)", None, utc(2026, 1, 5), utc(2026, 1, 10, 8)),  # 7 = Saturday
    ("cron(0 0 1 JAN-MAR ? *)", None, utc(2026, 3, 2), utc(2027, 1, 1)),
    ("cron(0 0 1 jun,dec ? *)", None, utc(2026, 1, 1), utc(2026, 6, 1)),
    ("cron(0 0 1 1 ? 2030-2032)", None, utc(2026, 1, 1), utc(2030, 1, 1)),
    ("cron(0 0 1 1 ? 2030-2032)", None, utc(2032, 1, 1), None),
    ("cron(0 0 1 1 ? 2027/5)", None, utc(2027, 6, 1), utc(2032, 1, 1)),
    ("cron(0 0 1 1 ? 2199)", None, utc(2198, 12, 31), utc(2199, 1, 1)),
    ("cron(0 0 1 1 ? 2199)", None, utc(2199, 1, 1), None),
    ("cron(59 23 31 12 ? *)", None, utc(2026, 12, 31, 23, 59), utc(2027, 12, 31, 23, 59)),
    ("cron(* * * * ? *)", None, utc(2026, 1, 1, 10, 0, 30), utc(2026, 1, 1, 10, 1)),
    ("cron(0 0 1/10 * ? *)", None, utc(2026, 1, 21), utc(2026, 1, 31)),
    ("cron(0 0 1/10 * ? *)", None, utc(2026, 2, 21), utc(2026, 3, 1)),
    ("cron(0 0-23/6 * * ? *)", None, utc(2026, 1, 1, 13), utc(2026, 1, 1, 18)),
    ("0 12 * * ? *", "Etc/UTC", utc(2026, 1, 1), utc(2026, 1, 1, 12)),  # wrapper optional
    # New York: EST -5, EDT -4; 2026 spring forward Mar 8 02:00, fall back Nov 1 02:00.
    ("cron(30 2 * * ? *)", NY, utc(2026, 3, 7, 8), utc(2026, 3, 9, 6, 30)),  # 02:30 Mar 8 skipped
    ("cron(30 3 * * ? *)", NY, utc(2026, 3, 7, 9), utc(2026, 3, 8, 7, 30)),
    ("cron(0 12 * * ? *)", NY, utc(2026, 3, 7, 18), utc(2026, 3, 8, 16)),
    ("cron(30 1 * * ? *)", NY, utc(2026, 10, 31, 12), utc(2026, 11, 1, 5, 30)),  # first 01:30
    ("cron(30 1 * * ? *)", NY, utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)),  # not repeated
    ("cron(0 * * * ? *)", NY, utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 7)),  # 01:00 EST skipped
    # Berlin: CET +1, CEST +2; 2026 spring forward Mar 29 02:00, fall back Oct 25 03:00.
    ("cron(30 2 * * ? *)", BERLIN, utc(2026, 3, 28, 12), utc(2026, 3, 30, 0, 30)),
    ("cron(30 2 * * ? *)", BERLIN, utc(2026, 10, 24, 12), utc(2026, 10, 25, 0, 30)),
    ("cron(30 2 * * ? *)", BERLIN, utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)),
    ("cron(0 9 ? * 2 *)", BERLIN, utc(2026, 3, 28), utc(2026, 3, 30, 7)),
    ("cron(0 0 * * ? *)", "Asia/Kolkata", utc(2026, 1, 1), utc(2026, 1, 1, 18, 30)),
]


@pytest.mark.parametrize(("expr", "zone", "after", "expected"), NEXT)
def test_next_after(expr: str, zone: str | None, after: datetime, expected: datetime | None) -> None:
    found = parse(expr).next_after(after, resolve_timezone(zone))
    assert found == expected
    if found is not None:
        assert found.utcoffset() is not None and found.utcoffset().total_seconds() == 0


def test_next_times_runs_ambiguous_wall_time_once() -> None:
    times = parse("cron(30 1 * * ? *)").next_times(utc(2026, 10, 31, 12), resolve_timezone(NY), 3)
    assert times == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30), utc(2026, 11, 3, 6, 30)]


LATEST = [
    ("cron(0 12 * * ? *)", None, utc(2026, 1, 5, 11), utc(2026, 1, 4, 12)),
    ("cron(0 12 * * ? *)", None, utc(2026, 1, 5, 12), utc(2026, 1, 5, 12)),
    # 01:10 EST (second pass of the repeated hour): the last run was 01:45 EDT.
    ("cron(*/15 1 * * ? *)", NY, utc(2026, 11, 1, 6, 10), utc(2026, 11, 1, 5, 45)),
    ("cron(0 0 1 1 ? 2030)", None, utc(2026, 6, 1), None),
    ("cron(0 0 L * ? *)", None, utc(2026, 3, 15), utc(2026, 2, 28)),
]


@pytest.mark.parametrize(("expr", "zone", "when", "expected"), LATEST)
def test_latest_at_or_before(expr: str, zone: str | None, when: datetime, expected: datetime | None) -> None:
    assert parse(expr).latest_at_or_before(when, resolve_timezone(zone)) == expected


INVALID = [
    ("cron(0 12 * * * *)", "both are set"),
    ("cron(0 12 ? * ? *)", "both are '?'"),
    ("cron(60 * * * ? *)", "minutes field '60': 60 is outside 0-59"),
    ("cron(0 24 * * ? *)", "hours field"),
    ("cron(0 0 32 * ? *)", "day-of-month field"),
    ("cron(0 0 ? 13 MON *)", "month field '13'"),
    ("cron(0 0 ? * 8 *)", "day-of-week field '8'"),
    ("cron(0 0 ? * 2#6 *)", "'#' must be 1-5"),
    ("cron(0 0 1 * ? 1969)", "year field '1969'"),
    ("cron(0 0 * * ?)", "6 fields"),
    ("rate(5 minutes)", "rate() expressions"),
    ("cron(0 0 5-1 * ? *)", "after its end"),
    ("cron(0 0 L-3 * ? *)", "L and W"),
    ("cron(0/0 * * * ? *)", "step"),
    ("cron(0 0 ? * MON/2 *)", "'/' is not allowed"),
    ("cron(0 0 1 ? * *)", "day-of-week"),
    ("cron(0 0 1 * ? XYZ)", "not a number"),
    ("", "empty"),
]


@pytest.mark.parametrize(("expr", "message"), INVALID)
def test_invalid_expressions(expr: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(expr)
    assert message in str(caught.value)
    assert caught.value.location == "scheduleExpression"


def test_invalid_time_zone() -> None:
    with pytest.raises(InvalidInput) as caught:
        resolve_timezone("Mars/Olympus_Mons")
    assert caught.value.location == "timezone"
    assert "Mars/Olympus_Mons" in str(caught.value)


def test_naive_datetime_rejected() -> None:
    with pytest.raises(ValueError):
        parse("cron(0 12 * * ? *)").next_after(datetime(2026, 1, 1), resolve_timezone(None))
