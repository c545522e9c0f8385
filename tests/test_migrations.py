"""The migrations create exactly what the tables declare, and run from scratch to head."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import kiln.db.tables  # noqa: F401
from kiln.db.base import Base
from kiln.db.engine import get_engine


def test_migrated_schema_matches_the_declared_tables() -> None:
    engine = get_engine()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_fast_head_lookup_agrees_with_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from kiln.db.engine import MIGRATIONS, head_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()
