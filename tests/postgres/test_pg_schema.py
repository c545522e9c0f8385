"""On PostgreSQL the migrations run from scratch and create exactly what the tables declare."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

import kiln.db.tables  # noqa: F401
from kiln.db.base import Base
from kiln.db.engine import get_engine, head_revision, reset_engines


def test_migrations_from_scratch_match_the_declared_tables(kiln_on_postgres: str) -> None:
    engine = get_engine()
    assert engine.dialect.name == "postgresql"
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        # PostgreSQL enforces declared types (SQLite does not): compare them as well.
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_second_start_takes_the_fast_path_and_keeps_data(kiln_on_postgres: str) -> None:
    from kiln.schedule.claims import bump_jobs_version, jobs_version

    bump_jobs_version()
    reset_engines()
    get_engine()  # already at head: nothing to migrate
    assert jobs_version() == 1


def test_the_session_database_url(postgres_url: str) -> None:
    import psycopg

    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("kiln",)


def test_process_start_times_beyond_32_bits_are_stored(kiln_on_postgres: str) -> None:
    """Start times are clock ticks since boot: past 2^31 after ~248 days of uptime."""
    from kiln.services.builds import records as images
    arn = images.create_image(name="web", version="1.0.0", recipe_arn="r", infrastructure_arn="i")
    images.update(arn, owner_start=2**40 + 7)
    assert images.get_row(arn).owner_start == 2**40 + 7


def test_sessions_run_in_utc_on_a_server_in_another_zone(kiln_on_postgres: str) -> None:
    from kiln.db.engine import session

    with session() as db:
        assert db.execute(text("SELECT current_setting('TimeZone')")).scalar() == "UTC"
    import psycopg

    with psycopg.connect(kiln_on_postgres.replace("+psycopg", "")) as connection:
        assert connection.execute("SELECT current_setting('TimeZone')").fetchone() == ("Pacific/Auckland",)


def test_a_relaxed_unit_of_work_commits_without_waiting_for_the_log(kiln_on_postgres: str) -> None:
    from kiln.db.engine import session

    def setting() -> str:
        with session() as db:
            return str(db.execute(text("SHOW synchronous_commit")).scalar())

    with session(durable=False) as db:
        assert db.execute(text("SHOW synchronous_commit")).scalar() == "off"
    assert setting() == "on"  # SET LOCAL: this transaction only


@pytest.mark.slow
def test_processes_starting_together_on_an_empty_database_all_migrate_cleanly(kiln_on_postgres: str) -> None:
    """The advisory lock also serialises the first migration, so concurrent first starts don't collide."""
    import subprocess
    import sys

    code = "from kiln.db.engine import get_engine, head_revision; get_engine(); print(head_revision())"
    starts = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(4)]
    results = [(process.wait(timeout=120), *process.communicate()) for process in starts]
    assert [(rc, err) for rc, _, err in results] == [(0, "")] * 4
    with get_engine().connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
