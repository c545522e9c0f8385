"""A pytest plugin that runs any part of the suite on PostgreSQL instead of SQLite.

    .venv/bin/python -m pytest -p tests.postgres.on_postgres tests/resources tests/pipelines

Every test then gets a fresh database on the session's private server (see ``conftest.py`` here).
Tests that check SQLite itself (the ``kiln.db`` file in KILN_HOME) fail by design under it.
"""

from __future__ import annotations

import os

import pytest
from tests.postgres.conftest import BIN, kiln_on_postgres, postgres_server  # noqa: F401


@pytest.fixture(autouse=True)
def _kiln_on_postgres(request: pytest.FixtureRequest) -> None:
    if os.geteuid() != 0 or BIN is None:
        pytest.skip("running the suite on PostgreSQL needs root and the PostgreSQL server binaries")
    request.getfixturevalue("kiln_on_postgres")
