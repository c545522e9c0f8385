"""Read-only units of work on PostgreSQL: READ ONLY transactions without the advisory lock, so a read
answers while a writer holds kiln's lock, and the server refuses a write in one before anything is
written."""

from __future__ import annotations

import pytest

from kiln.db.engine import POSTGRES_LOCK_KEY


def test_a_read_answers_while_a_writer_holds_the_lock_and_a_write_is_refused(kiln_on_postgres: str) -> None:
    from sqlalchemy import text

    from kiln.db.engine import ReadOnlyViolation, get_engine, read_only, session
    from kiln.services.accounts.regions import create_region, list_regions
    from kiln.services.common.unit import only_reading

    with get_engine().connect() as writer:
        writer.execute(text(f"SELECT pg_advisory_xact_lock({POSTGRES_LOCK_KEY})"))  # held until rollback
        with read_only(), session() as db:
            assert db.execute(text("SHOW transaction_read_only")).scalar() == "on"
        assert "local" in [region["RegionName"] for region in only_reading(list_regions)]
        writer.rollback()

    with pytest.raises(ReadOnlyViolation), read_only():
        create_region("eu-west-1")
    assert "eu-west-1" not in [region["RegionName"] for region in list_regions()]
    assert only_reading(lambda: create_region("eu-west-1"))["RegionName"] == "eu-west-1"
    assert "eu-west-1" in [region["RegionName"] for region in list_regions()]
