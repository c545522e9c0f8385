"""The change log's SQLite triggers (migration 0022_image_changes) are there after every migration: a later
migration that rebuilds one of the tables they watch (SQLite's batch "move and copy") drops its triggers
without a word, and DescribeImages answers kept in memory would then stop seeing changes (kiln falls back
to reading everything, which hides the loss: only this test notices)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from kiln.db.engine import MIGRATIONS
from kiln.store import image_changes

WATCHED = ("store_images", "store_tags", "store_launch_permissions", "store_watermarks", "image_scans")
EXPECTED = {
    f"kiln_image_change_{table}_{event}"
    for table in WATCHED for event in ("insert", "delete", "update_old", "update")
} | {"kiln_image_change_accounts_alias", "kiln_image_change_accounts_insert", "kiln_image_change_accounts_delete"}


def _upgraded(path: Path) -> None:
    """``alembic upgrade head`` on a database that does not exist yet."""
    engine = create_engine(f"sqlite:///{path}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def test_every_image_change_trigger_survives_the_migrations(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    _upgraded(database)
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    found = {name: table for name, table in rows if name.startswith("kiln_image_change_")}
    assert sorted(EXPECTED - set(found)) == []  # dropped by a later migration
    assert sorted(set(found) - EXPECTED) == []
    assert len(found) == image_changes.TRIGGERS
    for name, table in found.items():  # each on the table its name says
        assert name.removeprefix("kiln_image_change_").startswith(table)
