"""The 0006_lifecycle migration creates exactly what the lifecycle tables declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from kiln.db.base import Base
from kiln.db.engine import get_engine


def test_migration_matches_the_tables() -> None:
    engine = get_engine()
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        assert {"lifecycle_policies", "lifecycle_executions", "lifecycle_execution_resources"} <= tables
        lifecycle = [
            d
            for d in compare_metadata(MigrationContext.configure(connection), Base.metadata)
            if "lifecycle" in repr(d)
        ]
    assert lifecycle == []
