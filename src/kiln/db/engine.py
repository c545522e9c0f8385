"""One engine per database URL, migrated to the newest revision on first use.

SQLite runs in WAL mode with a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE`` so writers queue instead of failing on lock upgrades.
PostgreSQL gets the same contract: every transaction first takes one transaction-scoped
advisory lock, so kiln's read-then-write units of work (build numbers, leases, counters)
run one at a time there too, and a waiter gives up after the same 60 seconds.

Work that only reads (an API's Describe/Get/List call) runs under :func:`read_only`: the units of
work it opens come from a second engine on the same database whose transactions take no write lock
(SQLite: a deferred ``BEGIN`` on a ``query_only`` connection, so under WAL they run beside a writer
and each other; PostgreSQL: ``READ ONLY`` without the advisory lock). A write attempted there is
refused by the database itself and surfaces as :class:`ReadOnlyViolation`, so the caller can run the
work again as an ordinary unit of work: nothing ever writes without the write lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from kiln.db.open_hooks import run_open_hooks
from kiln.home import database_url

_lock = threading.RLock()
_engines: dict[str, Engine] = {}
_sessionmakers: dict[str, sessionmaker[Session]] = {}
_read_engines: dict[str, Engine] = {}
_read_sessionmakers: dict[str, sessionmaker[Session]] = {}
# Engines whose start-up (migration, open hooks) is done, read without the lock: every unit of work and
# every cached read asks for its engine, and on a busy server threads queued on the lock.
_ready: dict[str, Engine] = {}


def _configure_sqlite(engine: Engine, *, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        if not read_only and _relaxed.get():  # (the safety level cannot change inside a transaction)
            connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
            connection.info["relaxed"] = True
        connection.exec_driver_sql(begin)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection, record):  # type: ignore[no-untyped-def]
        if record.info.pop("relaxed", False):
            dbapi_connection.execute("PRAGMA synchronous=FULL")


# pg_advisory_xact_lock key shared by every kiln process on a PostgreSQL database ("kiln" in ASCII).
POSTGRES_LOCK_KEY = 0x6B696C6E
LOCK_TIMEOUT_MS = 60000


def _configure_postgresql(engine: Engine, *, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True  # a session setting, outside any transaction
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
        cursor.execute("SET TIME ZONE 'UTC'")  # times are stored as naive UTC whatever the server's zone
        cursor.close()
        dbapi_connection.autocommit = autocommit

    # A reader takes no advisory lock: it changes nothing, and READ ONLY makes the server refuse a write.
    first = "SET TRANSACTION READ ONLY" if read_only else f"SELECT pg_advisory_xact_lock({POSTGRES_LOCK_KEY})"

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql(first)
        if not read_only and _relaxed.get():
            connection.exec_driver_sql("SET LOCAL synchronous_commit = off")


MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION = re.compile(r'^(down_revision|revision)\s*=\s*"?([\w]+)"?', re.MULTILINE)


def head_revision() -> str:
    """The newest migration, read from the files without importing Alembic (a fast start-up path)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for key, value in _REVISION.findall(path.read_text()):
            (revisions if key == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"migrations must have exactly one head, found {sorted(heads)}")
    return heads.pop()


def _current_revision(engine: Engine) -> str | None:
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        return None


def migrate(engine: Engine) -> None:
    if _current_revision(engine) == head_revision():
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _create(url: str, *, read_only: bool = False) -> Engine:
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, read_only=read_only)
    elif engine.dialect.name == "postgresql":
        _configure_postgresql(engine, read_only=read_only)
    return engine


def get_engine(url: str | None = None) -> Engine:
    url = url or database_url()
    ready = _ready.get(url)
    if ready is not None:
        return ready
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create(url)
            migrate(engine)
            _engines[url] = engine
            _sessionmakers[url] = sessionmaker(engine, expire_on_commit=False)
            # Start-up steps (recovery) write, even when the first to open the database only reads.
            reading = _active.__dict__.get("read_only", False)
            _active.read_only = False
            try:
                run_open_hooks()
            finally:
                _active.read_only = reading
            _ready[url] = engine
        return engine


def _reader(url: str) -> sessionmaker[Session]:
    """The sessions of read-only units of work on ``url`` (its engine made on first use, after the
    writing engine has migrated the database)."""
    get_engine(url)
    ready = _read_sessionmakers.get(url)  # set once, under the lock, with its engine made
    if ready is not None:
        return ready
    with _lock:
        maker = _read_sessionmakers.get(url)
        if maker is None:
            engine = _create(url, read_only=True)
            _read_engines[url] = engine
            maker = _read_sessionmakers[url] = sessionmaker(engine, expire_on_commit=False)
        return maker


_active = threading.local()
# Set while a unit of work that may skip the sync at its commit opens its transaction.
_relaxed: ContextVar[bool] = ContextVar("kiln_relaxed_commit", default=False)


class ReadOnlyViolation(Exception):
    """Work run under :func:`read_only` tried to write; nothing was written (run it again without)."""


def _refused_write(error: BaseException) -> bool:
    """Whether the database refused ``error``'s statement because the transaction is read-only."""
    original = getattr(error, "orig", None)
    if getattr(original, "sqlite_errorcode", None) == 8 or "readonly database" in str(original):  # SQLITE_READONLY
        return True
    return getattr(original, "sqlstate", None) == "25006" or getattr(original, "pgcode", None) == "25006"


@contextmanager
def read_only() -> Iterator[None]:
    """Within this block, this thread's new units of work (:func:`session`) only read: they take no
    write lock and the database refuses a write in them (:class:`ReadOnlyViolation`). A unit of work
    already open when the block starts is joined as usual."""
    previous = _active.__dict__.get("read_only", False)
    _active.read_only = True
    try:
        yield
    finally:
        _active.read_only = previous


def in_unit_of_work(url: str | None = None) -> bool:
    """Whether this thread is inside :func:`session` for ``url`` (its writes not yet committed)."""
    return (url or database_url()) in _active.__dict__.get("sessions", {})


@contextmanager
def session(url: str | None = None, *, durable: bool = True) -> Iterator[Session]:
    """A unit of work: one transaction, committed on success, rolled back on error.

    Nested use in one thread joins the outer unit of work instead of opening a second connection,
    which on SQLite would wait for the outer transaction's write lock forever. Under
    :func:`read_only` the unit of work only reads.

    ``durable=False`` is for bookkeeping whose loss a crash explains (a workflow step's start and
    end): its commit is not synced to disk by itself (SQLite ``synchronous=NORMAL`` in WAL mode,
    PostgreSQL ``synchronous_commit=off``). It is atomic as any, and the log is written in order: the
    next durable commit makes it durable too, so an operating-system crash or a power loss can only
    take such commits made after the last durable one — never one that a durable commit (an image
    becoming available, a blob no longer referenced) came after.
    """
    url = url or database_url()
    get_engine(url)
    open_sessions: dict[str, Session] = _active.__dict__.setdefault("sessions", {})
    outer = open_sessions.get(url)
    if outer is not None:
        yield outer
        return
    from sqlalchemy.exc import DataError, DBAPIError

    reading = _active.__dict__.get("read_only", False)
    maker = _reader(url) if reading else _sessionmakers[url]
    token = None if durable or reading else _relaxed.set(True)
    try:
        with maker() as db, db.begin():
            if token is not None:
                db.connection()  # begins the transaction now, while ``_relaxed`` holds
                _relaxed.reset(token)
                token = None
            open_sessions[url] = db
            try:
                yield db
            finally:
                del open_sessions[url]
    except DBAPIError as error:
        if reading and _refused_write(error):
            raise ReadOnlyViolation(str(getattr(error, "orig", error)).splitlines()[0]) from error
        if not isinstance(error, DataError):
            raise
        # PostgreSQL enforces VARCHAR(n) and INTEGER ranges (SQLite stores anything): say so in one line.
        from kiln.errors import InvalidInput

        detail = str(getattr(error, "orig", error)).splitlines()[0]
        raise InvalidInput(f"the database refused a value: {detail}",
                           hint="a field is longer or larger than kiln stores") from error
    finally:
        if token is not None:
            _relaxed.reset(token)


def reset_engines() -> None:
    """Forget cached engines (tests switch KILN_HOME between cases)."""
    with _lock:
        for engine in (*_engines.values(), *_read_engines.values()):
            engine.dispose()
        _ready.clear()
        _engines.clear()
        _sessionmakers.clear()
        _read_engines.clear()
        _read_sessionmakers.clear()
