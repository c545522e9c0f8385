from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.documents.validate import parse


def _issues(text: str, platform: str | None = "Linux") -> list[str]:
    return [f"{i.line}:{i.column}: {i.message}"
            for i in parse(textwrap.dedent(text).lstrip("\n"), "d.yaml", platform=platform)[1]]


@pytest.fixture
def issues() -> Callable[..., list[str]]:
    """Every validation error of a (dedented) document as ``LINE:COLUMN: message``."""
    return _issues


@pytest.fixture
def write_doc(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str, name: str = "doc.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write
