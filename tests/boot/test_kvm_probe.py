"""kiln's KVM probe: a guest that never reaches its kernel's init under KVM means TCG, with the reason
said; the probe's QEMU never outlives it."""

from __future__ import annotations

import os
from pathlib import Path

from kiln.runtime.qemu import probe_accel


def _qemus_on(path: Path) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in cmdline and b"qemu-system" in cmdline:
            found.append(int(pid))
    return found


def test_a_disk_that_boots_nothing_falls_back_to_tcg_and_says_why(tmp_path: Path) -> None:
    disk = tmp_path / "blank.raw"
    with open(disk, "wb") as handle:
        handle.truncate(1 << 20)  # no boot sector: SeaBIOS finds nothing to start
    accel = probe_accel(disk, tmp_path, timeout=5)
    assert accel.name == "tcg", accel
    assert "/dev/kvm" in accel.reason, accel.reason
    assert accel.args() == ["-accel", "tcg"]
    assert _qemus_on(disk) == [], "the probe's QEMU was stopped"

