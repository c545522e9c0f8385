from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy import Engine

import kiln.db.engine as engine_module
from kiln.db.engine import get_engine, reset_engines
from kiln.services.startup import install as install_startup

pytest_plugins = ["tests.vm_schedule"]  # which tests start first


def _tmpfs_with_room(path: Path, room: int) -> bool:
    """``path`` is a writable tmpfs with ``room`` bytes free, mounted without noexec/nodev/nosuid (the tests
    run programs, make device nodes and set-id files under tmp_path)."""
    try:
        with open("/proc/self/mounts") as mounts:
            entries = [line.split() for line in mounts]
        stats = os.statvfs(path)
    except OSError:
        return False
    options = [set(entry[3].split(",")) for entry in entries if entry[1:3] == [str(path), "tmpfs"]]
    usable = bool(options) and not options[-1] & {"ro", "noexec", "nodev", "nosuid"}
    return usable and os.access(path, os.W_OK) and stats.f_bavail * stats.f_frsize >= room


def pytest_configure(config: pytest.Config) -> None:
    """Temporary files in RAM: the suite writes, fsyncs and deletes many files (blobs, layers, SQLite
    databases, a Debian bootstrap in mmdebstrap's TMPDIR), so tmp_path and TMPDIR go under /dev/shm
    when it is a tmpfs with room. A --basetemp or TMPDIR given by the caller wins."""
    if config.option.basetemp or os.environ.get("TMPDIR"):
        return
    shm = Path("/dev/shm")
    if _tmpfs_with_room(shm, 4 << 30):
        os.environ["TMPDIR"] = str(shm)
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``network`` (a Debian bootstrap), then ``slow`` (many processes), start first: with
    pytest-xdist they run alongside the rest instead of ending the run. Otherwise the order is unchanged."""
    items.sort(key=lambda item: (item.get_closest_marker("network") is None, item.get_closest_marker("slow") is None))


# The wiring every kiln entry point does: recovery and managed components on first database use.
install_startup()
_migrate = engine_module.migrate


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kiln SQLite database as kiln's first start leaves it (migrated from scratch to head, start-up run:
    managed components seeded), made once per session by kiln itself. Read-only: tests get copies."""
    home = tmp_path_factory.mktemp("template-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KILN_HOME", str(home))
        patch.delenv("KILN_DATABASE_URL", raising=False)
        reset_engines()
        get_engine()
        reset_engines()  # disposed: the write-ahead log is checkpointed into kiln.db
    return home / "kiln.db"


@pytest.fixture(autouse=True)
def kiln_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_template: Path) -> Iterator[Path]:
    """Every test gets its own KILN_HOME (and so its own database and image store).

    A SQLite database that does not exist yet starts as a copy of ``database_template`` instead of
    being migrated from scratch again; kiln then opens it as usual (migration check, start-up steps).
    Tests of the from-scratch path itself take the ``fresh_database`` fixture."""
    home = tmp_path / "kiln-home"
    home.mkdir()
    monkeypatch.setenv("KILN_HOME", str(home))
    monkeypatch.delenv("KILN_DATABASE_URL", raising=False)

    def migrate_from_template(engine: Engine) -> None:
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        if database and database != ":memory:" and not Path(database).exists():
            shutil.copyfile(database_template, database)
        _migrate(engine)

    monkeypatch.setattr(engine_module, "migrate", migrate_from_template)
    reset_engines()
    yield home
    reset_engines()


@pytest.fixture
def fresh_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's database is created and migrated from nothing, as on kiln's very first start."""
    monkeypatch.setattr(engine_module, "migrate", _migrate)
    reset_engines()


@pytest.fixture(autouse=True)
def _no_instance_outlives_its_test(kiln_home: Path) -> Iterator[None]:
    """Whatever a test leaves (also when it fails): terminated, so no mount or process leaks."""
    yield
    from kiln.runtime import overlay, sandbox

    if (kiln_home / "kiln.db").exists():
        from kiln.runtime import instances, recovery

        try:
            recovery.recover()
            for instance in instances.list_instances(states=recovery.LIVE_STATES):
                instances.terminate(instance.id, force=True)
        except Exception as error:
            print(f"instance clean-up failed, killing what is left: {error!r}")
    for mount_point in overlay.mounts_under(kiln_home):  # last resort, without the database
        for monitor in sandbox.find_monitors(mount_point):
            sandbox.kill(monitor)
        overlay.unmount(mount_point)


def needs_root() -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and overlayfs")


# --- the ``kiln`` command, in this process ---------------------------------------------------------


class Result(NamedTuple):
    """What one ``kiln`` command line did: its exit code and everything it printed."""

    exit_code: int
    stdout: str
    stderr: str


Kiln = Callable[..., Result]


def _exit_code(done: SystemExit) -> tuple[int, str]:
    """The exit code and message a process would end with on ``SystemExit`` (as Python's own handler)."""
    if done.code is None:
        return 0, ""
    if isinstance(done.code, int):
        return done.code, ""
    return 1, f"{done.code}\n"


@pytest.fixture
def kiln() -> Kiln:
    """Run one ``kiln`` command line in this process, as the installed ``kiln`` does (``sys.exit(run())``).

    ``kiln("image", "list", "--output", "json", input=None, env={"NAME": "value" or None}, cwd=None)``
    returns ``Result(exit_code, stdout, stderr)``: stdin, stdout and stderr (``typer.echo``, Rich, plain
    writes) are captured; ``env`` and ``cwd`` apply to this call only, and so does any logging set-up
    the command does. A crash (an exception ``run`` does not turn into an exit code) fails the test with
    its traceback, where a real process would have printed one.
    """
    from typer.testing import CliRunner

    from kiln.cli.main import run

    def invoke(
        *args: str, input: str | None = None, env: Mapping[str, str | None] | None = None, cwd: Path | None = None
    ) -> Result:
        root, kiln_logger = logging.getLogger(), logging.getLogger("kiln")
        saved_logging = (list(root.handlers), root.level, kiln_logger.level)
        runner = CliRunner()
        try:
            with pytest.MonkeyPatch.context() as patch:
                for key, value in (env or {}).items():
                    if value is None:
                        patch.delenv(key, raising=False)
                    else:
                        patch.setenv(key, value)
                if cwd is not None:
                    patch.chdir(cwd)
                with runner.isolation(input=input) as (out, err, _):
                    try:
                        code = run([str(arg) for arg in args])
                    except SystemExit as done:
                        code, message = _exit_code(done)
                        sys.stderr.write(message)
                    sys.stdout.flush()
                    sys.stderr.flush()
                    return Result(code, out.getvalue().decode(), err.getvalue().decode())
        finally:
            root.handlers[:] = saved_logging[0]
            root.setLevel(saved_logging[1])
            kiln_logger.setLevel(saved_logging[2])

    return invoke


# --- busybox root file systems (kiln's own builder, kiln.store.busybox) ----------------------------


@pytest.fixture(scope="session")
def bootstrap_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The mmdebstrap tarball cache, one per test process (``KILN_BOOTSTRAP_CACHE`` names a lasting one)."""
    configured = os.environ.get("KILN_BOOTSTRAP_CACHE")
    if configured:
        yield Path(configured)
        return
    cache = tmp_path_factory.mktemp("bootstrap-cache")
    yield cache
    shutil.rmtree(cache, ignore_errors=True)  # a 170 MB tarball, in RAM when the tests' tmp is


@pytest.fixture(scope="session")
def busybox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root file system built once per session by kiln's own builder. Read-only: a test that
    changes files takes ``busybox_copy``."""
    from kiln.store.busybox import busybox_rootfs

    return busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture
def busybox_copy(busybox_dir: Path, tmp_path: Path) -> Callable[[str], Path]:
    """``busybox_copy("name")``: a writable copy of ``busybox_dir`` under this test's tmp_path."""

    def copy(name: str = "busybox") -> Path:
        return Path(shutil.copytree(busybox_dir, tmp_path / name, symlinks=True))

    return copy


# --- S3: moto in server mode, one per session -----------------------------------------------------


@dataclass
class MotoServer:
    endpoint: str
    pid: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """``python -m moto.server`` on a free loopback port, for the whole session; killed by pid."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield MotoServer(endpoint, process.pid)
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MotoServer:
    """A fresh moto (the session's server) and dummy credentials in the environment, no AWS config."""
    request = urllib.request.Request(f"{moto_server.endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return moto_server


@pytest.fixture
def s3(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``aws``, with ``AWS_ENDPOINT_URL_S3`` in the environment; a test client."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws.endpoint)
    # the test's own client names the endpoint explicitly; the actions must find it from the env
    return boto3.client("s3", endpoint_url=aws.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


# --- the VM tests' bootable Debian image (tests/vm_support.py) -------------------------------------


@pytest.fixture(scope="session")
def shared_vm_image(tmp_path_factory: pytest.TempPathFactory, bootstrap_cache: Path) -> Any:
    """tests/vm/vm_image.yaml built once per session, across xdist workers too: a ``BuiltImage(home,
    ami)`` whose home is read-only; ``vm_support.copy_home`` gives a KILN_HOME of one's own."""
    from tests.vm_support import built_image

    return built_image(tmp_path_factory, bootstrap_cache)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The shared VM image is removed by the process that ran the session (xdist's controller, after its
    workers are done): a worker cannot know whether another still copies it."""
    if hasattr(session.config, "workerinput"):
        return
    from tests.vm_support import SHARED_NAME

    factory = getattr(session.config, "_tmp_path_factory", None)  # pytest's own, as pytest-xdist reads it
    if factory is not None:
        shutil.rmtree(factory.getbasetemp() / SHARED_NAME, ignore_errors=True)
