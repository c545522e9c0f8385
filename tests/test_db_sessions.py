"""A unit of work may skip the sync at its commit (workflow-step bookkeeping); every other one syncs."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from kiln.db.engine import session

FULL, NORMAL = 2, 1  # SQLite's PRAGMA synchronous levels


def _level() -> int:
    with session() as db:
        return int(db.execute(text("PRAGMA synchronous")).scalar_one())


def test_a_relaxed_unit_of_work_commits_unsynced_and_the_next_syncs_again() -> None:
    with session() as db:
        db.execute(text("CREATE TABLE notes (n INTEGER)"))
    assert _level() == FULL
    with session(durable=False) as db:
        assert db.execute(text("PRAGMA synchronous")).scalar_one() == NORMAL
        db.execute(text("INSERT INTO notes VALUES (1)"))
    assert _level() == FULL  # the connection went back to the pool at the durable level
    with pytest.raises(RuntimeError), session(durable=False) as db:
        db.execute(text("INSERT INTO notes VALUES (2)"))
        raise RuntimeError("rolled back")
    assert _level() == FULL
    with session() as db:
        assert db.execute(text("SELECT n FROM notes ORDER BY n")).scalars().all() == [1]


def test_a_relaxed_unit_of_work_inside_a_durable_one_is_durable() -> None:
    with session() as outer, session(durable=False) as inner:
        assert inner is outer
        assert inner.execute(text("PRAGMA synchronous")).scalar_one() == FULL


def test_workflow_step_records_are_the_relaxed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.services.builds import records

    arn = records.create_image(name="web", version="1.0.0", recipe_arn="r", infrastructure_arn="i")
    asked: list[bool] = []
    real = records.session

    def spy(url: str | None = None, *, durable: bool = True):  # type: ignore[no-untyped-def]
        asked.append(durable)
        return real(url, durable=durable)

    monkeypatch.setattr(records, "session", spy)
    with records.step(arn, "build", "Check", "ExecuteComponents") as handle:
        assert _level() == FULL  # work inside a step is durable as ever
        handle.message = "done"
    records.set_status(arn, "BUILDING")
    assert asked == [False, False, True]  # the step's start and end; the image's status syncs
    steps = records.list_steps(arn)
    assert [(s["name"], s["status"], s["message"]) for s in steps] == [("Check", "COMPLETED", "done")]
    assert _level() == FULL
