"""A disk made like another (a publish's child like its published parent): same identity and times,
the other's size while the files fit in it, a bigger disk when they don't."""

from __future__ import annotations

import os
from pathlib import Path

from kiln.store import api


def child_with(base_ami: str, tmp_path: Path, name: str, size: int) -> str:
    upper = tmp_path / f"upper-{name}"
    upper.mkdir()
    (upper / "added.bin").write_bytes(os.urandom(size))
    return api.create_image_from_upper(base_ami, upper, name=name)


def test_a_child_keeps_its_parents_disk_while_its_files_fit(base_ami: str, tmp_path: Path) -> None:
    parent = api.raw_disk(base_ami, tmp_path / "parent.raw")
    assert parent.size == api.export_image(base_ami, "raw", tmp_path / "export.raw").stat().st_size

    small = api.raw_disk(child_with(base_ami, tmp_path, "small", 1 << 20), tmp_path / "small.raw", like=parent)
    assert (small.identity, small.epoch, small.size) == (parent.identity, parent.epoch, parent.size)
    assert (tmp_path / "small.raw").stat().st_size == parent.size

    big = api.raw_disk(child_with(base_ami, tmp_path, "big", parent.size), tmp_path / "big.raw", like=parent)
    assert big.size > parent.size and big.identity == parent.identity  # grown as an export would
