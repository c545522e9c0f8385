"""kiln.files: files made whole or not at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kiln.files import partial_path, staged_path, write_atomic


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "files").mkdir()
    return tmp_path / "files"


def test_write_atomic_gives_the_mode_from_the_first_byte(folder: Path) -> None:
    target = folder / "secret.json"
    old = os.umask(0)
    try:
        write_atomic(target, '{"token_secret": "x"}', mode=0o600)
    finally:
        os.umask(old)
    assert target.read_text() == '{"token_secret": "x"}'
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not partial_path(target).exists()


def test_write_atomic_replaces_a_file_whole(folder: Path) -> None:
    target = folder / "answer.json"
    target.write_text("old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in folder.iterdir()) == ["answer.json"]


def test_a_failure_keeps_the_old_file_and_leaves_nothing_behind(folder: Path) -> None:
    target = folder / "template.qcow2"
    target.write_text("old")
    with pytest.raises(RuntimeError), staged_path(target) as partial:
        partial.write_text("half")
        raise RuntimeError("the command failed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in folder.iterdir()) == ["template.qcow2"]


def test_a_staged_folder_is_removed_on_failure(folder: Path) -> None:
    target = folder / "tree"
    with pytest.raises(OSError), staged_path(target) as partial:
        (partial / "sub").mkdir(parents=True)
        raise OSError("no space left")
    assert list(folder.iterdir()) == []


def test_the_partial_name_is_this_process_own(folder: Path) -> None:
    assert partial_path(folder / "x.img").name == f"x.img.{os.getpid()}.partial"
