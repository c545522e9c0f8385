"""The CLI only parses, calls services and renders: no module under ``kiln.cli`` imports the layers
below the services (also not inside a function)."""

from __future__ import annotations

import ast
from pathlib import Path

import kiln.cli

FORBIDDEN = ("kiln.store", "kiln.runtime", "kiln.db", "kiln.schedule")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_cli_modules_import_no_store_runtime_db_or_schedule() -> None:
    found = {
        f"{path.name}: {name}"
        for path in Path(kiln.cli.__file__).parent.glob("*.py")
        for name in _imports(path)
        if name.startswith(FORBIDDEN)
    }
    assert not found


def test_cli_modules_do_not_reach_them_through_the_kiln_package() -> None:
    """``from kiln import store`` would be the same reach past the services."""
    for path in Path(kiln.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "kiln":
                assert not {alias.name for alias in node.names} & {"store", "runtime", "db", "schedule"}, path.name
