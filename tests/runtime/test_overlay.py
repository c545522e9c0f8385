from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kiln.errors import InvalidInput, KilnError
from kiln.runtime import overlay


def _volume(tmp_path: Path) -> tuple[Path, Path, Path]:
    dirs = tuple(tmp_path / name for name in ("upper", "work", "merged"))
    for directory in dirs:
        directory.mkdir()
    return dirs  # type: ignore[return-value]


def test_layers_stack_base_first_whiteouts_hide_and_the_upper_survives_remount(tmp_path: Path, layer) -> None:
    base = layer("base", {"etc/a": "base-a", "etc/b": "base-b", "etc/c": "base-c"})
    top = layer("top", {"etc/a": "top-a", "etc/b": None})
    upper, work, merged = _volume(tmp_path)
    overlay.mount([base, top], upper, work, merged)
    try:
        assert overlay.is_mounted(merged)
        assert (merged / "etc/a").read_text() == "top-a"
        assert not (merged / "etc/b").exists()
        assert (merged / "etc/c").read_text() == "base-c"
        (merged / "etc/new").write_text("written")
        (merged / "etc/c").unlink()
    finally:
        overlay.unmount(merged)
    assert not overlay.is_mounted(merged)
    assert (upper / "etc/new").read_text() == "written"
    whiteout = os.lstat(upper / "etc/c")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert (base / "etc/c").read_text() == "base-c"  # lower layers are never written

    overlay.mount([base, top], upper, work, merged)  # the same root volume again (stop, start)
    try:
        assert (merged / "etc/new").read_text() == "written"
        assert not (merged / "etc/c").exists()
    finally:
        overlay.unmount(merged)


def test_many_long_layer_paths_mount_through_the_new_mount_api(tmp_path: Path) -> None:
    lowers = []
    for index in range(120):
        directory = tmp_path / f"layer-{'x' * 40}-{index:03d}"
        directory.mkdir()
        (directory / "which").write_text(str(index))
        (directory / f"only-{index}").write_text("")
        lowers.append(directory)
    upper, work, merged = _volume(tmp_path)
    assert overlay._legacy_data(list(reversed(lowers)), upper, work, False) is None  # too long for mount(2)
    overlay.mount(lowers, upper, work, merged)
    try:
        assert (merged / "which").read_text() == "119"  # the last layer is on top
        assert all((merged / f"only-{i}").exists() for i in range(120))
    finally:
        overlay.unmount(merged)
    assert not overlay.is_mounted(merged)


def test_layer_paths_with_commas_and_colons_mount(tmp_path: Path) -> None:
    odd = tmp_path / "a,b:c"
    odd.mkdir()
    (odd / "file").write_text("odd")
    upper, work, merged = _volume(tmp_path)
    overlay.mount([odd], upper, work, merged)
    try:
        assert (merged / "file").read_text() == "odd"
    finally:
        overlay.unmount(merged)


def test_missing_layer_is_refused_before_mounting(tmp_path: Path) -> None:
    upper, work, merged = _volume(tmp_path)
    with pytest.raises(InvalidInput, match="does not exist"):
        overlay.mount([tmp_path / "nope"], upper, work, merged)
    assert not overlay.is_mounted(merged)


def test_mounts_under_reads_escaped_mountinfo_paths(tmp_path: Path, layer) -> None:
    base = layer("base", {"f": "x"})
    root = tmp_path / "with space"
    upper, work, merged = (root / n for n in ("upper", "work", "merged"))
    for directory in (upper, work, merged):
        directory.mkdir(parents=True)
    overlay.mount([base], upper, work, merged)
    try:
        assert overlay.mounts_under(root) == [merged]
    finally:
        assert overlay.unmount(merged) is True
    assert overlay.mounts_under(root) == []
    assert overlay.unmount(merged) is False  # not mounted: nothing to do, no error


def _volatile(target: Path) -> bool:
    """Whether /proc/self/mountinfo lists the overlay at ``target`` as volatile (``volatile`` before
    Linux 6.6, ``fsync=volatile`` since)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(target):
            return bool({"volatile", "fsync=volatile"} & set(fields[-1].split(",")))
    raise AssertionError(f"{target} is not mounted")


@pytest.mark.parametrize("new_api", [False, True], ids=["mount(2)", "new mount API"])
def test_a_volatile_root_volume_mounts_again_in_the_same_boot_of_the_host_only(
        tmp_path: Path, layer, new_api: bool) -> None:  # type: ignore[no-untyped-def]
    base = layer("odd,name" if new_api else "base", {"etc/a": "base-a"})
    upper, work, merged = _volume(tmp_path)
    overlay.mount([base], upper, work, merged, volatile=True)
    try:
        assert _volatile(merged)
        (merged / "etc/a").write_text("written")
    finally:
        overlay.unmount(merged)
    assert (work / "work/incompat/volatile").is_dir()  # the kernel's own mark: no syncs were made

    overlay.mount([base], upper, work, merged)  # the same boot of the host: nothing written can be lost
    try:
        assert not _volatile(merged)
        assert (merged / "etc/a").read_text() == "written"
    finally:
        overlay.unmount(merged)

    overlay.mount([base], upper, work, merged, volatile=True)
    overlay.unmount(merged)
    (work / overlay.VOLATILE_BOOT).write_text("00000000-0000-0000-0000-000000000000\n")  # as after a restart
    with pytest.raises(KilnError, match="host has restarted since") as refused:
        overlay.mount([base], upper, work, merged)
    assert str(upper) in str(refused.value)
    assert not overlay.is_mounted(merged)
    assert (work / "work/incompat/volatile").is_dir()
