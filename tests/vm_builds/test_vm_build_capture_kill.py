"""A capture of a VM's disk killed with SIGKILL while it holds its mounts: the capturing process (a
real one, started here) converts a real qcow2 disk with a GPT and an ext4 root partition, loop-mounts
it and mounts the overlay over the AMI's layers, and is killed while it syncs (it pauses there, so the
kill lands while everything is mounted). kiln's recovery then unmounts the loop and overlay mounts,
frees the loop device and removes the raw copy and the scratch directory; a capture whose process is
alive is left alone. Without a VM: the disk is made here (the whole build in a VM: test_vm_build_kill.py)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loop and overlay mounts need root")

SECTOR = 512
FIRST_LBA = 2048
FS_BYTES = 16 << 20
CHILD = """
import sys, time
from pathlib import Path
from kiln.runtime import vm_capture

def hold(source, dest):  # the kill lands here: everything is mounted
    Path(sys.argv[4]).write_text("mounted")
    time.sleep(600)

vm_capture.sync_tree = hold
vm_capture.capture_upper(Path(sys.argv[1]), [Path(sys.argv[2])], Path(sys.argv[3]))
"""


def _gpt_disk(raw: Path, tree: Path) -> None:
    """A raw disk: a GPT with one Linux root (x86-64) partition holding an ext4 file system of ``tree``."""
    fs = raw.with_suffix(".ext4")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(fs), f"{FS_BYTES // 1024}k"], check=True)
    last = FIRST_LBA + FS_BYTES // SECTOR - 1
    entry = uuid.UUID("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709").bytes_le + uuid.uuid4().bytes_le + struct.pack(
        "<QQQ", FIRST_LBA, last, 0) + bytes(72)
    header = b"EFI PART" + struct.pack("<IIII", 0x10000, 92, 0, 0) + struct.pack(
        "<QQQQ", 1, 0, 34, last) + uuid.uuid4().bytes_le + struct.pack("<QIII", 2, 128, 128, 0)
    with open(raw, "wb") as disk:
        disk.truncate((last + 34) * SECTOR)
        disk.seek(SECTOR)
        disk.write(header)
        disk.seek(2 * SECTOR)
        disk.write(entry)
        disk.seek(FIRST_LBA * SECTOR)
        disk.write(fs.read_bytes())
    fs.unlink()


def _loop_backing_files() -> set[str]:
    found = set()
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            found.add(backing.read_text().strip().removesuffix(" (deleted)"))
        except OSError:
            continue
    return found


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as handle:
        points = [line.split()[4] for line in handle]
    return [point for point in points if point == str(root) or point.startswith(f"{root}/")]


def test_recovery_unmounts_and_removes_what_a_killed_capture_left(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from kiln.db.engine import reset_engines
    from kiln.runtime import records, recovery, vm_capture

    home = tmp_path / "home"
    instance_dir = home / "instances" / "i-0123456789abcdef0"
    volume = instance_dir / "root.qcow2"
    monkeypatch.setenv("KILN_HOME", str(home))
    reset_engines()
    # the VM instance whose disk was being captured: stopped, as CreateImage leaves it
    records.insert(id=instance_dir.name, image_id=None, region="local", instance_type="t3.micro",
                   state="stopped", transition=None, busy_pid=None, busy_start_time=None,
                   root_device_type="ebs", network="none", hostname=instance_dir.name, vcpus=2, memory_mib=1024,
                   lower_dirs=[], tags={}, paths={"dir": str(instance_dir), "upper": str(volume),
                                                  "work": str(instance_dir), "merged": str(instance_dir),
                                                  "console": str(instance_dir / "console.log"), "cgroups": [],
                                                  "vm": {"root": str(volume)}})  # fmt: skip

    instance_dir.mkdir(parents=True)
    tree, layer = tmp_path / "tree", tmp_path / "layer"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("guest\n")
    layer.mkdir()
    raw = tmp_path / "disk.raw"
    _gpt_disk(raw, tree)
    subprocess.run(["qemu-img", "convert", "-q", "-O", "qcow2", str(raw), str(volume)], check=True)
    raw.unlink()
    upper, signal_file = instance_dir / "upper", tmp_path / "mounted"
    upper.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "KILN_HOME": str(home)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(volume), str(layer), str(upper), str(signal_file)],
                             env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not signal_file.exists():
            assert child.poll() is None, f"the capture ended before it mounted: {child.stderr.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the capture did not get to its mounts"
            time.sleep(0.1)
        [scratch] = list(instance_dir.glob(f"{vm_capture.SCRATCH_PREFIX}*"))
        assert len(_mounts_under(scratch)) == 2, "the loop mount and the overlay are there when it is killed"
        assert any(path.startswith(str(scratch)) for path in _loop_backing_files())
        # a capture that is alive is not touched by recovery
        assert vm_capture.abandoned([instance_dir]) == []
    finally:
        child.kill()  # SIGKILL: no clean-up code of the capture runs
        child.wait()
    assert _mounts_under(scratch), "the kill left the mounts (what recovery is for)"

    monkeypatch.setenv("KILN_HOME", str(home))
    reset_engines()
    try:
        report = recovery.recover()
    finally:
        reset_engines()
    assert report.captures == [str(scratch)], report
    assert _mounts_under(instance_dir) == [], "no loop or overlay mount is left under the instance directory"
    assert not scratch.exists(), "the raw copy and the scratch directory are gone"
    assert not any(path.startswith(str(instance_dir)) for path in _loop_backing_files()), "the loop device is freed"
    assert volume.is_file(), "the instance's own root volume is kept"
