"""The hand-written migration creates exactly what the resource tables declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kiln.db.base import Base
from kiln.db.engine import get_engine
from kiln.db.tables import resources

TABLES = {
    resources.ComponentRow.__tablename__,
    resources.ImageRecipeRow.__tablename__,
    resources.InfrastructureConfigurationRow.__tablename__,
    resources.DistributionConfigurationRow.__tablename__,
}


def test_migration_matches_tables() -> None:
    engine = get_engine()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    # Other branches' tables are theirs to check; keep the differences that touch ours.
    ours = [diff for diff in differences if any(f"'{table}'" in repr(diff) for table in TABLES)]
    assert ours == []
