"""The VM tests' copies of a KILN_HOME (tests/vm_support.py): the copy's database and store refer only
to the copy, layers and blobs are shared with the original as hard links, nothing else is, and the copy
works as a home of its own while the original stays as it was."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.vm_support import copy_home

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="importing a root file system needs root")


def _recorded_text(database: Path) -> str:
    with sqlite3.connect(database) as db:
        rows = [row for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                for row in db.execute(f'SELECT * FROM "{table}"')]
    db.close()
    return json.dumps(rows, default=str)


def test_a_copied_home_is_a_home_of_its_own(kiln, busybox_copy: Callable[[str], Path], kiln_home: Path,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from kiln.db.engine import reset_engines
    from kiln.store import api

    ami = api.import_rootfs(busybox_copy("rootfs"), name="copied")
    ran = json.loads(kiln("instance", "run", ami, "--output", "json").stdout)["InstanceId"]
    assert kiln("instance", "terminate", ran, "--force").exit_code == 0  # its paths are in the database
    reset_engines()
    assert str(kiln_home) in _recorded_text(kiln_home / "kiln.db")
    original = _recorded_text(kiln_home / "kiln.db")

    copy = copy_home(kiln_home, tmp_path / "copy")
    recorded = _recorded_text(copy / "kiln.db")
    assert str(kiln_home) not in recorded.replace(str(copy), "") and str(copy) in recorded
    assert _recorded_text(kiln_home / "kiln.db") == original, "the original is left as it was"
    [layer] = api.layer_dirs(ami, "local")
    copied_layer = copy / layer.relative_to(kiln_home)
    assert copied_layer.is_dir() and (copied_layer / "bin").exists()
    shared = [path for directory in (layer, *kiln_home.glob("regions/*/blobs/sha256"))
              for path in directory.rglob("*") if path.is_file() and not path.is_symlink()]
    assert any("blobs" in path.parts for path in shared) and any(layer in path.parents for path in shared)
    for original_file in shared:  # content-addressed, never written: the same files
        assert os.lstat(copy / original_file.relative_to(kiln_home)).st_ino == os.lstat(original_file).st_ino
    for name in ("kiln.db", "regions/local/index.json"):
        assert (copy / name).stat().st_ino != (kiln_home / name).stat().st_ino, name

    monkeypatch.setenv("KILN_HOME", str(copy))
    reset_engines()
    assert [image.id for image in api.describe_images()] == [ami]
    instance = json.loads(kiln("instance", "run", ami, "--output", "json").stdout)["InstanceId"]
    assert kiln("instance", "exec", instance, "--", "cat", "/etc/hostname").exit_code == 0
    assert kiln("instance", "terminate", instance, "--force").exit_code == 0
    deregistered = kiln("image", "deregister", ami)
    assert deregistered.exit_code == 0, deregistered.stderr
    reset_engines()
    assert _recorded_text(kiln_home / "kiln.db") == original, "what the copy did stays in the copy"
