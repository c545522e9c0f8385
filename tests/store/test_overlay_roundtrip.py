"""A real overlay upper dir (whiteout + opaque dir) captured, unpacked and mounted with overlayfs."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from kiln.errors import InvalidInput
from kiln.store import api

pytestmark = pytest.mark.root


def _mount(lower: list[Path], target: Path) -> None:
    # overlay lowerdir lists the topmost layer first; layer_dirs is base first
    lowerdir = ":".join(str(p) for p in reversed(lower))
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lowerdir}", str(target)], check=True
    )


def test_whiteout_and_opaque_round_trip(tmp_path: Path, busybox_copy) -> None:
    busybox_dir = busybox_copy()
    (busybox_dir / "etc" / "old").mkdir()
    (busybox_dir / "etc" / "old" / "stale.conf").write_text("stale\n")
    base = api.import_rootfs(busybox_dir, name="base")
    upper = tmp_path / "upper"
    (upper / "etc" / "old").mkdir(parents=True)
    os.mknod(upper / "etc" / "hostname", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    os.setxattr(upper / "etc" / "old", "trusted.overlay.opaque", b"y")
    (upper / "etc" / "old" / "fresh.conf").write_text("fresh\n")
    (upper / "etc" / "motd").write_text("welcome\n")
    child = api.create_image_from_upper(base, upper, name="child")

    dirs = api.layer_dirs(child)
    assert len(dirs) == 2 and dirs[0] == api.layer_dirs(base)[0]
    top = dirs[1]
    assert stat.S_ISCHR(os.lstat(top / "etc" / "hostname").st_mode)
    assert os.lstat(top / "etc" / "hostname").st_rdev == 0
    assert os.getxattr(top / "etc" / "old", "trusted.overlay.opaque") == b"y"

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    _mount(dirs, mnt)
    try:
        assert not (mnt / "etc" / "hostname").exists()
        assert (mnt / "etc" / "motd").read_text() == "welcome\n"
        assert sorted(os.listdir(mnt / "etc" / "old")) == ["fresh.conf"]
        assert (mnt / "etc" / "passwd").exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)

    flat = api.flatten(child, tmp_path / "flat")
    assert not (flat / "etc" / "hostname").exists()
    assert sorted(os.listdir(flat / "etc" / "old")) == ["fresh.conf"]
    assert (flat / "bin" / "busybox").exists()


def test_redirect_dir_upper_is_refused(tmp_path: Path, base_ami: str) -> None:
    upper = tmp_path / "upper"
    (upper / "renamed").mkdir(parents=True)
    os.setxattr(upper / "renamed", "trusted.overlay.redirect", b"/etc")
    with pytest.raises(InvalidInput, match="redirect_dir=off"):
        api.create_image_from_upper(base_ami, upper, name="child")
    assert [i.id for i in api.describe_images()] == [base_ami]
