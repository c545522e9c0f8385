"""A private PostgreSQL server for the test session, and a fresh database for every test."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiln.db.engine import reset_engines


def _binary_dir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    return Path(candidates[-1]).parent if candidates else None


BIN = _binary_dir()

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="starting a private PostgreSQL server needs root (runs as postgres)"),
    pytest.mark.skipif(BIN is None, reason="PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin"),
]


@dataclass(frozen=True)
class PostgresServer:
    port: int
    socket_dir: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) on the maintenance database."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(sql)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_ready(server: PostgresServer, process: subprocess.Popen[bytes], log: Path) -> None:
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", dbname="postgres",
                                 connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """initdb into a temporary directory owned by postgres, start the server on a free port, stop it at the end."""
    assert BIN is not None
    root = Path(tempfile.mkdtemp(prefix="kiln-pg-"))
    shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    log = root / "server.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(BIN / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "--encoding=UTF8", "--no-sync"],
            check=True, capture_output=True, cwd=root,
        )
        server = PostgresServer(port=_free_port(), socket_dir=root)
        with log.open("wb") as out:
            # Started directly as the postgres user (not through runuser) so the pid is the postmaster's.
            process = subprocess.Popen(
                [str(BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(server.port),
                 "-k", str(root), "-c", "fsync=off", "-c", "max_connections=200",
                 "-c", "timezone=Pacific/Auckland"],  # not UTC, as on many real servers
                user="postgres", group="postgres", extra_groups=[], cwd=root, stdout=out, stderr=subprocess.STDOUT,
            )
        _wait_until_ready(server, process, log)
        server.admin("CREATE DATABASE kiln")
        yield server
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # fast shutdown: roll back open transactions, then stop
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The session's database: postgresql+psycopg://postgres@127.0.0.1:PORT/kiln."""
    return postgres_server.url("kiln")


_databases = itertools.count(1)


@pytest.fixture
def kiln_on_postgres(kiln_home: Path, postgres_server: PostgresServer,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """kiln pointed at a fresh, empty PostgreSQL database of its own; yields its URL."""
    name = f"kiln_test_{os.getpid()}_{next(_databases)}"
    postgres_server.admin(f"CREATE DATABASE {name}")
    url = postgres_server.url(name)
    monkeypatch.setenv("KILN_DATABASE_URL", url)
    reset_engines()
    try:
        yield url
    finally:
        reset_engines()
        postgres_server.admin(f"DROP DATABASE {name} WITH (FORCE)")
