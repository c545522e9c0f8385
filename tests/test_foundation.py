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


def test_kiln_fixture_feeds_stdin_and_scopes_env_and_cwd_to_the_call(kiln, kiln_home: Path, tmp_path: Path) -> None:
    import json
    import os

    body = "name: from-stdin\nsubnetId: none\n"
    created = kiln("infrastructure", "create", "--cli-input-yaml", "-", "--output", "json", input=body)
    assert created.exit_code == 0, created.stderr
    assert json.loads(created.stdout)["infrastructureConfigurationArn"].endswith("/from-stdin")
    other = tmp_path / "other-home"
    other.mkdir()
    elsewhere = kiln("infrastructure", "list", "--output", "json", env={"KILN_HOME": str(other)}, cwd=other)
    assert elsewhere.exit_code == 0 and json.loads(elsewhere.stdout)["infrastructureConfigurationSummaryList"] == []
    assert (other / "kiln.db").exists()
    assert os.environ["KILN_HOME"] == str(kiln_home) and Path.cwd() != other
