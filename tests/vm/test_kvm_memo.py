"""KVM's own failure is remembered once per host boot (``kiln.runtime.kvm_memo``), for every disk and
every KILN_HOME; a failure that may be the guest's, and a success, stay with their disk. The probe
itself (``probe_accel``) never reads the memo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln.runtime import kvm_memo, procs, qemu, vm

ABORTED = qemu.Accel("tcg", "/dev/kvm exists but QEMU under KVM exited (status -6) before the kernel's init: "
                            "kvm_buf_set_msrs: Assertion failed")


def _blank(path: Path) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(1 << 20)  # no boot sector: nothing to boot under any accelerator
    return path


@pytest.fixture
def memo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "run-kiln"
    monkeypatch.setenv(kvm_memo.MEMO_VARIABLE, str(directory))
    return directory


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The disks ``choose_accel`` probes, each answered as QEMU aborting in its KVM code — the host fault
    this machine has for real, which a host where KVM works cannot produce."""
    probed: list[Path] = []

    def aborting(disk: Path, scratch: Path, *, uefi: bool = False, timeout: float = 0) -> qemu.Probe:
        probed.append(disk)
        return qemu.Probe(ABORTED, host_fault=True)

    monkeypatch.setattr(qemu, "probe_kvm", aborting)
    return probed


def test_a_kvm_fault_is_probed_once_per_boot_for_every_disk_and_home(memo_dir: Path, probes: list[Path],
                                                                      tmp_path: Path) -> None:
    first, second = _blank(tmp_path / "a.qcow2"), _blank(tmp_path / "b.qcow2")
    assert vm.choose_accel(first) == ABORTED
    assert vm.choose_accel(second).name == "tcg"
    assert probes == [first], "the second disk was not probed"
    reason = vm.choose_accel(second).reason
    assert "earlier probe on this boot" in reason and str(first) in reason and ABORTED.reason in reason
    [memo] = memo_dir.iterdir()
    assert procs.boot_id() in memo.name and json.loads(memo.read_text())["disk"] == str(first)
    assert not first.with_name(first.name + ".accel.json").exists(), "kept for the host, not for the disk"


def test_an_answer_of_an_earlier_boot_or_another_qemu_does_not_count(memo_dir: Path, probes: list[Path],
                                                                     tmp_path: Path) -> None:
    disk = _blank(tmp_path / "a.qcow2")
    assert kvm_memo.remember(ABORTED, disk)
    [memo] = memo_dir.iterdir()
    other_boot = memo.with_name(memo.name.replace(str(procs.boot_id()), "00000000-0000-0000-0000-000000000000"))
    memo.rename(other_boot)
    assert kvm_memo.remembered() is None
    other_qemu = memo.with_name(memo.name.rsplit("-", 1)[0] + "-0123456789abcdef.json")
    other_boot.rename(other_qemu)
    assert kvm_memo.remembered() is None
    assert vm.choose_accel(disk) == ABORTED and probes == [disk]
    assert sorted(path.name for path in memo_dir.iterdir()) == sorted([memo.name, other_qemu.name])


def test_off_probes_every_disk(memo_dir: Path, probes: list[Path], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kvm_memo.MEMO_VARIABLE, "off")
    first, second = _blank(tmp_path / "a.qcow2"), _blank(tmp_path / "b.qcow2")
    assert vm.choose_accel(first) == vm.choose_accel(second) == ABORTED
    assert probes == [first, second] and not memo_dir.exists()
    # each disk keeps its own answer, as where /run cannot be written
    assert json.loads(first.with_name(first.name + ".accel.json").read_text())["reason"] == ABORTED.reason


def test_where_the_memo_cannot_be_written_the_disk_keeps_the_answer(probes: list[Path], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    monkeypatch.setenv(kvm_memo.MEMO_VARIABLE, str(blocked / "run-kiln"))
    first, second = _blank(tmp_path / "a.qcow2"), _blank(tmp_path / "b.qcow2")
    assert vm.choose_accel(first) == ABORTED
    assert vm.choose_accel(first) == ABORTED and probes == [first], "the disk's own answer was kept"
    assert vm.choose_accel(second) == ABORTED and probes == [first, second]


def test_a_failure_that_may_be_the_guests_stays_with_its_disk(memo_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    timed_out = qemu.Accel("tcg", "/dev/kvm exists but a probe boot under KVM did not start the kernel's init")
    probed: list[Path] = []

    def hanging(disk: Path, scratch: Path, *, uefi: bool = False, timeout: float = 0) -> qemu.Probe:
        probed.append(disk)
        return qemu.Probe(timed_out)

    monkeypatch.setattr(qemu, "probe_kvm", hanging)
    first, second = _blank(tmp_path / "a.qcow2"), _blank(tmp_path / "b.qcow2")
    assert vm.choose_accel(first) == vm.choose_accel(second) == timed_out
    assert probed == [first, second] and not memo_dir.exists()


@pytest.mark.slow  # where KVM works, the blank disks each wait out the probe's timeout
def test_a_real_probe_of_this_host_is_kept_where_it_belongs(memo_dir: Path, tmp_path: Path) -> None:
    """No stand-in here: this host's own KVM, on a disk that boots nothing under any accelerator."""
    first, second = _blank(tmp_path / "a.raw"), _blank(tmp_path / "b.raw")
    probe = qemu.probe_kvm(first, tmp_path, timeout=5)
    assert probe.accel.name == "tcg", probe  # nothing reaches an init
    chosen = vm.choose_accel(first)
    assert chosen.name == "tcg"
    again = vm.choose_accel(second)
    if probe.host_fault:  # KVM itself failed (as on a host where nested guests abort): once for all disks
        assert [path.name for path in memo_dir.iterdir()] == [kvm_memo.memo_path().name]  # type: ignore[union-attr]
        assert "earlier probe on this boot" in again.reason
        assert not (second.with_name(second.name + ".probe") / "kvm-probe.serial").exists()
    else:  # the guest found nothing to boot: each disk has its own answer, nothing for the host
        assert not memo_dir.exists()
        assert all(disk.with_name(disk.name + ".accel.json").is_file() for disk in (first, second))
    direct = tmp_path / "direct"
    direct.mkdir()
    probed = qemu.probe_kvm(second, direct, timeout=5)  # the probe itself never asks the memo: it boots
    assert (direct / "kvm-probe.serial").exists() and "earlier probe" not in probed.accel.reason


def test_a_disks_answer_holds_for_this_boot_and_this_qemu_only(memo_dir: Path, probes: list[Path],
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kvm_memo.MEMO_VARIABLE, "off")  # the disk's own answer is what is kept
    disk = _blank(tmp_path / "a.qcow2")
    assert vm.choose_accel(disk) == ABORTED and probes == [disk]
    answer = disk.with_name(disk.name + ".accel.json")
    kept = json.loads(answer.read_text())
    assert kept["boot_id"] == procs.boot_id() and kept["qemu"] == kvm_memo.binary_key()
    assert vm.choose_accel(disk) == ABORTED and probes == [disk], "kept within this boot"
    answer.write_text(json.dumps({**kept, "boot_id": "00000000-0000-0000-0000-000000000000"}))
    assert vm.choose_accel(disk) == ABORTED and probes == [disk, disk], "an earlier boot's answer was used"
    answer.write_text(json.dumps({**kept, "qemu": "0123456789abcdef"}))
    assert vm.choose_accel(disk) == ABORTED and probes == [disk, disk, disk], "another QEMU's answer was used"
    answer.write_text(json.dumps({"name": "kvm", "reason": "an answer from before boot ids were kept"}))
    assert vm.choose_accel(disk) == ABORTED and len(probes) == 4
