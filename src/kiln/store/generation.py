"""The store's generation: a number that changes whenever any connection, in this process or another,
commits to the SQLite database, so a read may answer from memory while it stays the same.

SQLite's ``PRAGMA data_version`` on a connection of its own that never writes (one per database and
process, so its numbers compare) changes on every commit by anyone else, which is then every commit;
reading it costs microseconds. On other databases there is no such number: ``None``, and callers read the
database every time. Engines made anew (``reset_engines``, a database made anew at the same path) start
the watcher over.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from kiln.db.engine import get_engine, in_unit_of_work

Generation = tuple[str, int, int]  # database file, the id of its engine, data_version

_lock = threading.Lock()
_watchers: dict[str, tuple[object, sqlite3.Connection]] = {}  # url -> (its engine, the watching connection)
_steady = threading.local()


@contextmanager
def steady() -> Iterator[None]:
    """Within the block, this thread reads each database's generation once and answers that after: for
    work that only reads (one API read), which then sees the store as of one moment and asks the database
    once instead of at each cached read — each ask is a query, and on a busy server the wait
    for the interpreter lock after it cost more than the ask. Work that writes must not run inside."""
    outer = getattr(_steady, "seen", None)
    if outer is None:
        _steady.seen = {}
    try:
        yield
    finally:
        if outer is None:
            _steady.seen = None


def generation(url: str) -> Generation | None:
    """The database's generation now (within :func:`steady`, when this thread first asked), or None when
    it cannot be told (not SQLite, or this thread is inside a unit of work whose uncommitted writes a
    cached answer would not show)."""
    seen: dict[str, Generation | None] | None = getattr(_steady, "seen", None)
    if seen is not None and url in seen:
        return seen[url]
    found = _generation(url)
    if seen is not None and found is not None:
        seen[url] = found
    return found


def _generation(url: str) -> Generation | None:
    engine = get_engine(url)
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:" or in_unit_of_work(url):
        return None
    with _lock:
        watcher = _watcher(url, engine, path)
        if watcher is None:
            return None
        version = watcher.execute("PRAGMA data_version").fetchone()[0]
    return (path, id(engine), version)


def _watcher(url: str, engine: object, path: str) -> sqlite3.Connection | None:
    """The connection watching ``url`` (made anew with its engine); the caller holds ``_lock``."""
    found = _watchers.get(url)
    if found is not None and found[0] is engine:
        return found[1]
    if found is not None:
        found[1].close()
    try:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        return None
    _watchers[url] = (engine, connection)
    return connection


def look(url: str, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple[object, ...]] | None:
    """``sql``, a read, on the connection watching ``url`` (one statement, a transaction of its own): a
    look that needs no unit of work, as cheap as asking the generation. None when there is no watcher
    there (ask :func:`generation` first) or this thread is inside a unit of work."""
    found = _watchers.get(url)
    if found is None or in_unit_of_work(url):
        return None
    with _lock:
        return list(found[1].execute(sql, parameters))
