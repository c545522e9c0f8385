from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.db.engine import reset_engines


@pytest.fixture(autouse=True)
def kiln_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own KILN_HOME (and so its own database and image store)."""
    home = tmp_path / "kiln-home"
    home.mkdir()
    monkeypatch.setenv("KILN_HOME", str(home))
    monkeypatch.delenv("KILN_DATABASE_URL", raising=False)
    reset_engines()
    yield home
    reset_engines()


def needs_root() -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and overlayfs")
