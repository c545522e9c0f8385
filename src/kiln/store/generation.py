"""The store's generation: a number that changes whenever any connection, in this process or another,
commits to the SQLite database, so a read may answer from memory while it stays the same.

SQLite's ``PRAGMA data_version`` on a connection that never writes changes on every commit by any other
connection; reading it costs microseconds. Each thread asks its own such connection (a shared one
serialized every request of a busy server behind one lock), and its numbers mean nothing to another
connection's, so what callers get is an epoch per database: a thread that sees its number change counts
the epoch up, and any thread asking after a commit gets an epoch above every one given out before it.
On other databases there is no such number: ``None``, and callers read the database every time. Engines
made anew (``reset_engines``, a database made anew at the same path) start the watchers over.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from kiln.db.engine import get_engine, in_unit_of_work

Generation = tuple[str, int, int]  # database file, the id of its engine, the epoch

_lock = threading.Lock()
_epochs: dict[str, int] = {}
_watchers = threading.local()  # .of: url -> (engine, this thread's connection, its last data_version)
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
    mine: dict[str, tuple[object, sqlite3.Connection, int]] = _watchers.__dict__.setdefault("of", {})
    watcher = mine.get(url)
    if watcher is None or watcher[0] is not engine:
        if watcher is not None:
            watcher[1].close()
        try:
            connection = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error:
            return None
        watcher = (engine, connection, -1)  # a new watcher has seen nothing: it counts the epoch up
    version = watcher[1].execute("PRAGMA data_version").fetchone()[0]
    with _lock:
        epoch = _epochs.get(url, 0)
        if version != watcher[2]:
            epoch = _epochs[url] = epoch + 1
    mine[url] = (engine, watcher[1], version)
    return (path, id(engine), epoch)


def look(url: str, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple[object, ...]] | None:
    """``sql``, a read, on the connection this thread watches ``url`` with (one statement, a transaction of
    its own): a look that needs no unit of work, as cheap as asking the generation. None when this thread
    has no watcher there (ask :func:`generation` first) or is inside a unit of work."""
    watcher = _watchers.__dict__.get("of", {}).get(url)
    if watcher is None or in_unit_of_work(url):
        return None
    return list(watcher[1].execute(sql, parameters))
