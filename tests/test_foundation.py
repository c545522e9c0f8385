from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from kiln.db.base import utcnow
from kiln.db.engine import get_engine, session
from kiln.db.tables.leases import Lease
from kiln.model.ids import is_id, new_id


def test_database_is_created_and_migrated_in_kiln_home(fresh_database, kiln_home: Path) -> None:
    engine = get_engine()
    assert (kiln_home / "kiln.db").exists()
    assert "leases" in inspect(engine).get_table_names()
    with session() as db:
        db.add(Lease(name="x", holder="me", expires_at=utcnow()))
    with session() as db:
        lease = db.get(Lease, "x")
        assert lease is not None and lease.expires_at.tzinfo is not None


def test_ids_have_ec2_shape() -> None:
    ami = new_id("ami")
    assert is_id(ami, "ami") and not is_id(ami, "snap") and len(ami) == 21


def test_cli_help_lists_nouns(kiln) -> None:
    result = kiln("--help")
    assert result.exit_code == 0
    assert "golden machine images" in result.stdout


def test_usage_errors_are_one_message_not_a_traceback(kiln) -> None:
    result = kiln("component", "validate")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert "Missing option '--documents'" in result.stderr
