"""0019_image_numbers on a database that has images of two accounts: each image gets its ARN's account,
build numbers become unique per account (another account may have its own /1, the same account not
twice), and the rows that cascade from images (workflow steps, distribution outputs) survive the rebuild."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError

import kiln.db.engine as engine_module
from kiln.home import DEFAULT_ACCOUNT

PEER = "210987654321"
BEFORE = "0015_client_tokens"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite database configured as kiln configures its own (foreign keys on)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'kiln.db'}", future=True)
    engine_module._configure_sqlite(engine)
    yield engine
    engine.dispose()


def _upgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(engine_module.MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _image(account: str, build: int) -> dict[str, object]:
    return {
        "arn": f"arn:aws:imagebuilder:local:{account}:image/web/1.0.0/{build}", "name": "web",
        "version": "1.0.0", "build_number": build, "status": "AVAILABLE", "platform": "Linux",
        "recipe_arn": f"arn:aws:imagebuilder:local:{account}:image-recipe/web/1.0.0",
        "infrastructure_arn": f"arn:aws:imagebuilder:local:{account}:infrastructure-configuration/i",
        "date_created": "2026-01-01 00:00:00", "date_updated": "2026-01-01 00:00:00", "tests_enabled": 1,
        "tests_timeout_minutes": 720, "enhanced_metadata": 1, "tags": "{}", "output_amis": "[]",
        "resolved_inputs": "{}", "cancel_requested": 0, "workflow_execution_id": f"wf-{account}-{build}",
    }


def _insert(connection, values: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    names = ", ".join(values)
    connection.execute(text(f"INSERT INTO images ({names}) VALUES ({', '.join(':' + n for n in values)})"), values)


def test_upgrade_numbers_images_per_account(engine: Engine) -> None:
    _upgrade(engine, BEFORE)
    mine, theirs = _image(DEFAULT_ACCOUNT, 1), _image(PEER, 2)  # numbered across accounts before
    with engine.begin() as connection:
        _insert(connection, mine)
        _insert(connection, theirs)
        connection.execute(text(
            "INSERT INTO image_workflow_steps (step_execution_id, image_arn, workflow, position, name, action,"
            " status, outputs) VALUES ('step-1', :arn, 'build', 0, 'Build', 'ExecuteComponents', 'COMPLETED', '{}')"
        ), {"arn": theirs["arn"]})

    _upgrade(engine, "head")

    with engine.begin() as connection:
        accounts = dict(connection.execute(text("SELECT arn, account FROM images")).all())
        assert accounts == {mine["arn"]: DEFAULT_ACCOUNT, theirs["arn"]: PEER}
        steps = connection.execute(text("SELECT step_execution_id, image_arn FROM image_workflow_steps")).all()
        assert [tuple(step) for step in steps] == [("step-1", theirs["arn"])]
        _insert(connection, {**_image(PEER, 1), "account": PEER})  # the peer's own /1 is allowed now
    with pytest.raises(IntegrityError), engine.begin() as connection:
        duplicate = _image(DEFAULT_ACCOUNT, 1)
        _insert(connection, {**duplicate, "arn": duplicate["arn"] + "-again", "account": DEFAULT_ACCOUNT})
