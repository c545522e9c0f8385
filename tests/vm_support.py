"""The bootable Debian image the VM tests boot (tests/vm/vm_image.yaml), built once per test session.

With pytest-xdist the workers share it too: the first worker that needs it builds it in the directory
every worker's basetemp lies in, under a file lock; the others wait on the lock and then find it made
(or find why it failed). Each user gets a KILN_HOME of its own, a copy of the one the image was built
in: the unpacked layers and the blobs (content-addressed, never written once made) are hard links,
everything else — the database first — is a real copy, and the paths the database records are moved
to the copy, so the copy's store and database refer only to themselves. The built home is only read.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

IMAGE_DEFINITION = Path(__file__).parent / "vm" / "vm_image.yaml"
SHARED_NAME = "vm-image"
SHARED_TREES = ("cache/layers", "regions/*/blobs")  # hard-linked into every copy
NOT_COPIED = ("cache/vm-keys",)  # the exec key pool: each home makes its own keys


@dataclass(frozen=True)
class BuiltImage:
    home: Path  # the KILN_HOME the image was built in; read-only, users get copies (copy_home)
    ami: str


def shared_directory(factory: pytest.TempPathFactory) -> Path:
    """The session's directory every worker sees: the parent of a worker's basetemp (pytest-xdist gives
    each worker ``<basetemp>/<worker id>``), this process's basetemp without xdist."""
    basetemp = factory.getbasetemp()
    return basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp


def built_image(factory: pytest.TempPathFactory, bootstrap_cache: Path) -> BuiltImage:
    """The image, built now by the first process of the session to ask, else the one it built."""
    root = shared_directory(factory)
    record = root / f"{SHARED_NAME}.json"
    with open(root / f"{SHARED_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if record.exists():
            known = json.loads(record.read_text())
            if "error" in known:
                pytest.fail(f"the VM tests' image failed to build earlier in this session: {known['error']}")
            return BuiltImage(Path(known["home"]), known["ami"])
        home = root / SHARED_NAME / "home"
        try:
            ami = _build(home, bootstrap_cache)
        except Exception as error:
            record.write_text(json.dumps({"error": f"{type(error).__name__}: {error}"}))
            raise
        record.write_text(json.dumps({"home": str(home), "ami": ami}))
        return BuiltImage(home, ami)


def _build(home: Path, bootstrap_cache: Path) -> str:
    from kiln.db.engine import reset_engines
    from kiln.services.apply import apply_file
    from kiln.services.builds.workflow import create_and_build

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KILN_HOME", str(home))
        patch.setenv("KILN_BOOTSTRAP_CACHE", str(bootstrap_cache))
        patch.delenv("KILN_DATABASE_URL", raising=False)
        reset_engines()
        try:
            arns = {o.kind: o.arn for o in apply_file(IMAGE_DEFINITION).outcomes}
            image = create_and_build(recipe_arn=arns["ImageRecipe"],
                                     infrastructure_arn=arns["InfrastructureConfiguration"])
            assert image["state"]["status"] == "AVAILABLE", image["state"]
            return str(image["outputResources"]["amis"][0]["image"])
        finally:
            terminate_all()
            reset_engines()  # disposed: the write-ahead log is checkpointed into kiln.db


def terminate_all() -> None:
    """Every instance of the current KILN_HOME that is not terminated: terminated (after recovery)."""
    from kiln.runtime import instances, recovery

    recovery.recover()
    for instance in instances.list_instances(states=recovery.LIVE_STATES):
        instances.terminate(instance.id, force=True)


def module_home(image: BuiltImage, factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A module's own KILN_HOME copied from the shared image's (a fixture yields from this); every
    instance left in it is terminated afterwards, and its folder removed."""
    from kiln.db.engine import reset_engines

    work = factory.mktemp(name)
    home = copy_home(image.home, work / "home")
    yield home
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KILN_HOME", str(home))
        reset_engines()
        terminate_all()
        reset_engines()
    shutil.rmtree(work, ignore_errors=True)


def copy_home(source: Path, dest: Path) -> Path:
    """A KILN_HOME at ``dest`` holding what ``source`` holds, as the module says; returns ``dest``."""
    subprocess.run(["cp", "-a", "--link", str(source), str(dest)], check=True, capture_output=True)
    for name in NOT_COPIED:
        shutil.rmtree(dest / name, ignore_errors=True)
    shared = {path for pattern in SHARED_TREES for path in dest.glob(pattern)}
    for directory, subdirectories, files in os.walk(dest):
        subdirectories[:] = [name for name in subdirectories if Path(directory, name) not in shared]
        for name in files:
            _unshare(Path(directory, name))
    _move_recorded_paths(dest / "kiln.db", str(source), str(dest))
    return dest


def _unshare(path: Path) -> None:
    """``path``, a hard link, made a file of its own with the same content and attributes."""
    stat = path.lstat()
    if not path.is_file() or path.is_symlink() or stat.st_nlink == 1:
        return
    own = path.with_name(f".{path.name}.own")
    shutil.copy2(path, own)
    os.chown(own, stat.st_uid, stat.st_gid)
    os.replace(own, path)


def _move_recorded_paths(database: Path, old: str, new: str) -> None:
    """Paths the database records under ``old`` (log directories, instances' files) now under ``new``."""
    with sqlite3.connect(database) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]:
                db.execute(f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                           f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0', (old, new, old))
    db.close()
