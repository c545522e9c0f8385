"""Steps to run once per process and database, right after the database is first opened.

The layer above installs them (``kiln.services.startup.install``: recovery of what a killed process
left behind); ``kiln.db.engine`` runs them. A module of its own so installing costs no SQLAlchemy import.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

_lock = threading.Lock()
_hooks: list[Callable[[], None]] = []


def on_first_open(hook: Callable[[], None]) -> None:
    """Run ``hook`` each time this process first opens a database (installing twice is harmless)."""
    with _lock:
        if hook not in _hooks:
            _hooks.append(hook)


def run_open_hooks() -> None:
    for hook in list(_hooks):
        try:
            hook()
        except Exception as error:  # recovery must never stop the command the user asked for
            name = getattr(hook, "__qualname__", repr(hook))
            print(f"kiln: warning: start-up step {name} failed: {error}", file=sys.stderr)
