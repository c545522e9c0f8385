"""The migrations create exactly what the tables declare, and run from scratch to head.

The one SQLite check of migrations against tables (every table, column types included); PostgreSQL's is in
tests/postgres/test_pg_schema.py."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, Integer

import kiln.db.tables  # noqa: F401
from kiln.db.base import Base
from kiln.db.engine import get_engine


def _compare_type_on_sqlite(context, inspected_column, metadata_column, inspected_type, metadata_type):  # type: ignore[no-untyped-def]
    """SQLite's INTEGER holds 64 bits: a BIGINT column that a migration widened only on PostgreSQL (0009)
    reads back as INTEGER and is the same column. Primary keys excepted (only INTEGER aliases the rowid).
    Everything else: alembic's own comparison."""
    widened = isinstance(metadata_type, BigInteger) and isinstance(inspected_type, Integer)
    return False if widened and not metadata_column.primary_key else None


def test_migrated_schema_matches_the_declared_tables(fresh_database) -> None:
    engine = get_engine()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": _compare_type_on_sqlite})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_fast_head_lookup_agrees_with_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from kiln.db.engine import MIGRATIONS, head_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()
