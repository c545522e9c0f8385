"""A child's disk made from its parent's (``raw_disk(child, like=parent's geometry)``): the parent's file
system with the child's layer applied in place, so a change of N bytes changes about N bytes of the disk;
clean under e2fsck, with the child's files, the same bytes every time."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kiln.store import api
from kiln.store.export import DiskGeometry

BLOCK = 512 * 1024
MIB = 1 << 20


def blocks(path: Path) -> dict[int, bytes]:
    found = {}
    with open(path, "rb") as disk:
        index = 0
        while data := disk.read(BLOCK):
            if data.count(0) != len(data):
                found[index] = data
            index += 1
    return found


def changed(a: Path, b: Path) -> int:
    one, two = blocks(a), blocks(b)
    return sum(1 for index in one.keys() | two.keys() if one.get(index) != two.get(index))


def fsck_clean(path: Path) -> None:
    result = subprocess.run(["e2fsck", "-fn", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def read_file(image: Path, path: str) -> bytes:
    result = subprocess.run(["debugfs", "-R", f"cat {path}", str(image)], capture_output=True, check=True)
    return result.stdout


def child(parent: str, tmp_path: Path, name: str, build: dict[str, bytes | None]) -> str:
    """A child image of ``parent`` whose layer writes (bytes) or deletes (None, a whiteout) paths."""
    upper = tmp_path / f"upper-{name}"
    upper.mkdir()
    for path, data in build.items():
        target = upper / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            os.mknod(target, 0o600 | 0o020000, 0)  # a whiteout: character device 0/0
        else:
            target.write_bytes(data)
    return api.create_image_from_upper(parent, upper, name=name)


@pytest.fixture
def big_parent(busybox_copy, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    root = busybox_copy("big")
    (root / "data").mkdir()
    for number in range(4):
        (root / "data" / f"chunk-{number}.bin").write_bytes(os.urandom(2 * MIB))
    return api.import_rootfs(root, name="big")


def test_a_child_disk_differs_from_its_parents_by_about_what_changed(big_parent: str, tmp_path: Path) -> None:
    parent_disk = tmp_path / "parent.raw"
    geometry = api.raw_disk(big_parent, parent_disk)
    assert geometry.base_layers == 1
    fsck_clean(parent_disk)
    new_file = os.urandom(MIB)
    rewritten = bytearray(read_file(parent_disk, "/data/chunk-1.bin"))
    rewritten[300_000 : 300_000 + MIB] = os.urandom(MIB)
    cases = {
        "added": {"data/new.bin": new_file},
        "rewritten": {"data/chunk-1.bin": bytes(rewritten)},
        "deleted": {"data/chunk-2.bin": None},
        "grown": {"data/chunk-3.bin": read_file(parent_disk, "/data/chunk-3.bin") + os.urandom(100_000)},
        "nested": {"opt/app/bin/tool": b"#!/bin/sh\necho hi\n", "etc/hostname": b"other\n"},
    }
    made_amis = {}
    for name, change in cases.items():
        ami = made_amis[name] = child(big_parent, tmp_path, name, change)
        disk = tmp_path / f"{name}.raw"
        made = api.raw_disk(ami, disk, like=geometry)
        assert made == geometry, name  # laid out as the parent's, not rebuilt
        fsck_clean(disk)
        count = changed(parent_disk, disk)
        print(f"{name}: {count} blocks of 512 KiB changed")
        # 1 MiB = 2 blocks (3 when not aligned), 2 MiB deleted = 4-5 zeroed, plus a few metadata blocks
        assert count <= {"added": 8, "rewritten": 8, "deleted": 10, "grown": 6, "nested": 6}[name], (name, count)
        for path, data in change.items():
            listed = subprocess.run(["debugfs", "-R", f"ls -l /{os.path.dirname(path)}", str(disk)],
                                    capture_output=True, text=True, check=True).stdout
            if data is None:
                assert os.path.basename(path) not in listed.split()
            else:
                assert read_file(disk, f"/{path}") == data

    # the same parent and child give the same bytes again
    again = tmp_path / "added-again.raw"
    api.raw_disk(made_amis["added"], again, like=geometry)
    first = tmp_path / "added.raw"
    assert first.read_bytes() == again.read_bytes()


def test_a_grandchild_builds_on_the_chain_and_a_disk_without_parent_still_works(
    big_parent: str, tmp_path: Path
) -> None:
    geometry = api.raw_disk(big_parent, tmp_path / "parent.raw")
    first = child(big_parent, tmp_path, "first", {"data/one.bin": os.urandom(MIB)})
    first_geometry = api.raw_disk(first, tmp_path / "first.raw", like=geometry)
    second = child(first, tmp_path, "second", {"data/two.bin": os.urandom(MIB), "data/chunk-0.bin": None})
    api.raw_disk(second, tmp_path / "second.raw", like=first_geometry)
    fsck_clean(tmp_path / "second.raw")
    assert changed(tmp_path / "first.raw", tmp_path / "second.raw") <= 12
    # built without a parent's disk: a plain export's file system, its own geometry
    alone = api.raw_disk(second, tmp_path / "alone.raw")
    fsck_clean(tmp_path / "alone.raw")
    assert alone.base_layers == 3 and alone.identity != geometry.identity
    assert (tmp_path / "alone.raw").read_bytes() == api.export_image(second, "raw", tmp_path / "e.raw").read_bytes()


def test_a_layer_that_cannot_be_applied_in_place_makes_the_disk_afresh(big_parent: str, tmp_path: Path) -> None:
    geometry = api.raw_disk(big_parent, tmp_path / "parent.raw")
    ami = child(big_parent, tmp_path, "odd", {"data/odd\nname": b"x"})
    made = api.raw_disk(ami, tmp_path / "odd.raw", like=geometry)
    assert made == DiskGeometry(geometry.identity, geometry.epoch, geometry.size, 2)
    fsck_clean(tmp_path / "odd.raw")
    shutil.rmtree(tmp_path / "upper-odd")


def _tree_of(root: Path) -> dict[str, tuple[int, bytes | str | None]]:
    """path -> (mode, content or link target) of every entry under ``root`` but lost+found."""
    found: dict[str, tuple[int, bytes | str | None]] = {}
    for directory, names, files in os.walk(root):
        for name in names + files:
            path = Path(directory) / name
            rel = str(path.relative_to(root))
            if rel.startswith("lost+found"):
                continue
            st = path.lstat()
            content = os.readlink(path) if path.is_symlink() else (path.read_bytes() if path.is_file() else None)
            found[rel] = (st.st_mode & ~0o7000, content)  # (rdump leaves out set-id and sticky bits)
    return found


def test_the_child_disk_holds_exactly_the_childs_files(busybox_copy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = busybox_copy("parent")
    (root / "srv" / "old").mkdir(parents=True)
    (root / "srv" / "old" / "a.txt").write_text("a\n")
    (root / "srv" / "keep").mkdir()
    (root / "srv" / "keep" / "gone.txt").write_text("gone\n")
    (root / "srv" / "file-then-dir").write_text("file\n")
    parent = api.import_rootfs(root, name="parent")
    geometry = api.raw_disk(parent, tmp_path / "parent.raw")

    upper = tmp_path / "upper"
    (upper / "srv" / "keep").mkdir(parents=True)
    os.setxattr(upper / "srv" / "keep", "trusted.overlay.opaque", b"y")  # everything below replaced
    (upper / "srv" / "keep" / "new.txt").write_text("new\n")
    os.mknod(upper / "srv" / "old", 0o600 | 0o020000, 0)  # a whole directory deleted
    (upper / "srv" / "file-then-dir").mkdir()
    (upper / "srv" / "file-then-dir" / "inside").write_text("inside\n")
    (upper / "srv" / "link").symlink_to("keep/new.txt")
    (upper / "srv" / "one").write_bytes(b"linked\n")
    os.link(upper / "srv" / "one", upper / "srv" / "two")
    (upper / "srv" / "with space \"quoted\"").write_text("odd\n")
    os.setxattr(upper / "srv" / "one", "user.kiln", b"value")
    ami = api.create_image_from_upper(parent, upper, name="child")

    disk = tmp_path / "child.raw"
    assert api.raw_disk(ami, disk, like=geometry) == geometry  # applied in place
    fsck_clean(disk)
    dumped = tmp_path / "dumped"
    dumped.mkdir()
    subprocess.run(["debugfs", "-R", f"rdump / {dumped}", str(disk)], capture_output=True, check=True)
    expected = _tree_of(api.flatten(ami, tmp_path / "flat"))
    assert _tree_of(dumped) == expected
    stat_out = subprocess.run(["debugfs", "-R", "stat /srv/one", str(disk)], capture_output=True, text=True,
                              check=True).stdout
    assert "Links: 2" in stat_out
    xattrs = subprocess.run(["debugfs", "-R", "ea_get /srv/one user.kiln", str(disk)], capture_output=True,
                            text=True, check=True).stdout
    assert "value" in xattrs
