"""The store's generation: a number that changes whenever any connection, in this process or another,
commits to the SQLite database, so a read may answer from memory while it stays the same.

SQLite's ``PRAGMA data_version`` on a connection of its own that never writes changes on every commit
by anyone else, which is then every commit; reading it costs microseconds. On other databases there is
no such number: ``None``, and callers read the database every time.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from kiln.db.engine import get_engine, in_unit_of_work

Generation = tuple[str, int, int, int]  # database file, its device and inode, data_version

_lock = threading.Lock()
_watchers: dict[str, tuple[sqlite3.Connection, tuple[int, int]]] = {}


def generation(url: str) -> Generation | None:
    """The database's generation now, or None when it cannot be told (not SQLite, or this thread is
    inside a unit of work whose uncommitted writes a cached answer would not show)."""
    engine = get_engine(url)
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:" or in_unit_of_work(url):
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    file = (stat.st_dev, stat.st_ino)  # a database made anew at the same path starts over
    with _lock:
        watcher = _watchers.get(path)
        if watcher is None or watcher[1] != file:
            if watcher is not None:
                watcher[0].close()
            watcher = _watchers[path] = (sqlite3.connect(path, check_same_thread=False, isolation_level=None), file)
        version = watcher[0].execute("PRAGMA data_version").fetchone()[0]
    return (path, *file, version)
