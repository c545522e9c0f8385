"""Cross-check against croniter on the syntax both understand (standard fields, L, #), in UTC."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from croniter import croniter

from kiln.schedule.cron import parse

MINUTES = ["*/7", "0", "5,35", "10-20/5", "59"]
HOURS = ["*", "3", "8-17", "*/6", "0,23"]
MONTHS = ["*", "2", "1-3", "*/4", "12"]
# (AWS day-of-month, AWS day-of-week, croniter day-of-month, croniter day-of-week); AWS SUN = 1.
DAYS = [
    ("*", "?", "*", "*"),
    ("1", "?", "1", "*"),
    ("15,31", "?", "15,31", "*"),
    ("L", "?", "L", "*"),
    ("29", "?", "29", "*"),
    ("?", "2-6", "*", "1-5"),
    ("?", "1", "*", "0"),
    ("?", "6#3", "*", "5#3"),
    ("?", "2#5", "*", "1#5"),
]


def test_agrees_with_croniter_on_common_syntax() -> None:
    rng = random.Random(20261129)
    for _ in range(150):
        minute, hour, month = rng.choice(MINUTES), rng.choice(HOURS), rng.choice(MONTHS)
        aws_dom, aws_dow, c_dom, c_dow = rng.choice(DAYS)
        ours = parse(f"cron({minute} {hour} {aws_dom} {month} {aws_dow} *)")
        start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
        theirs = croniter(f"{minute} {hour} {c_dom} {month} {c_dow}", start)
        expected = [theirs.get_next(datetime) for _ in range(6)]
        assert ours.next_times(start, None, 6) == expected, ours.text
