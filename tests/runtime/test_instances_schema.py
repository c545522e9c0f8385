from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kiln.db.base import Base
from kiln.db.engine import get_engine


def test_the_migration_creates_exactly_the_instances_table() -> None:
    engine = get_engine()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, Base.metadata) if "instances" in repr(d)]
    assert differences == []
