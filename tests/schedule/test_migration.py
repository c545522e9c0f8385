"""The 0005_schedule migration creates exactly what the table module declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kiln.db.base import Base
from kiln.db.engine import get_engine

OURS = {"schedule_claims", "schedule_versions", "events", "webhooks", "webhook_deliveries"}


def test_migrated_schema_matches_declared_tables() -> None:
    engine = get_engine()
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    def table_of(entry: object) -> str:
        item = entry[0] if isinstance(entry, list) else entry
        for part in item[1:] if isinstance(item, tuple) else ():
            name = getattr(part, "name", None) if not isinstance(part, str) else part
            table = getattr(getattr(part, "table", None), "name", None)
            if table in OURS:
                return table
            if name in OURS:
                return name
        return ""

    ours = [entry for entry in diff if table_of(entry)]
    assert ours == []
