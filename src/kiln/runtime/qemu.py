"""QEMU for kiln: booting a disk while watching its serial console, and which accelerator can run it.

``/dev/kvm`` being there is not enough: under some nested hypervisors KVM starts a guest and then
fails it (OVMF stops with "KVM internal error ... emulation failure", a kernel hangs after GRUB). So
KVM is probed with the guest itself: a short boot of the disk (on a throwaway snapshot) that must get
the kernel to start its init within a timeout. If it does not, TCG (QEMU's own emulator) runs the
guest, and the reason says why. Every QEMU started here is stopped by its pid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kiln.errors import SystemRequirement

KVM_DEVICE = Path("/dev/kvm")
OVMF = (Path("/usr/share/ovmf/OVMF.fd"), Path("/usr/share/qemu/OVMF.fd"))
# what a Linux kernel prints when it hands over to userspace: the guest ran through decompression,
# long mode and its drivers
KERNEL_STARTED_INIT = ("Run /init as init process", "Run /sbin/init as init process", "Freeing unused kernel")
KVM_PROBE_SECONDS = 45.0
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Accel:
    """The accelerator QEMU runs a guest with: ``kvm`` or ``tcg``, and why this one."""

    name: str
    reason: str

    def args(self) -> list[str]:
        if self.name == "kvm":
            return ["-accel", "kvm", "-cpu", "host"]
        return ["-accel", "tcg"]


def qemu_binary() -> str:
    path = shutil.which("qemu-system-x86_64")
    if path is None:
        raise SystemRequirement("qemu-system-x86_64 is not installed", hint="apt-get install qemu-system-x86")
    return path


def ovmf_firmware() -> Path:
    for path in OVMF:
        if path.is_file():
            return path
    raise SystemRequirement("OVMF (UEFI firmware for QEMU) is not installed", hint="apt-get install ovmf")


@dataclass
class Guest:
    """A running QEMU whose first serial port is written to ``serial``."""

    process: subprocess.Popen[bytes]
    serial: Path
    stderr: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def console(self) -> str:
        try:
            return self.serial.read_bytes().decode("utf-8", "replace").replace("\r", "")
        except FileNotFoundError:
            return ""

    def errors(self) -> str:
        try:
            return self.stderr.read_text(errors="replace").strip()
        except FileNotFoundError:
            return ""

    def wait_for(self, texts: Iterable[str], timeout: float) -> str | None:
        """The first of ``texts`` the console shows within ``timeout`` seconds; None when QEMU exited
        or time ran out first."""
        wanted = tuple(texts)
        deadline = time.monotonic() + timeout
        while True:
            console = self.console()
            for text in wanted:
                if text in console:
                    return text
            if self.process.poll() is not None or time.monotonic() > deadline:
                return None
            time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        """Kill this QEMU (by its pid) and reap it; a no-op when it already exited."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def boot(disk: Path, *, accel: Accel, serial: Path, drives: Sequence[Path] = (), uefi: bool = False,
         memory_mib: int = 1024, cpus: int = 1, snapshot: bool = False, extra: Sequence[str] = ()) -> Guest:
    """Start QEMU on ``disk`` (format from its name: .qcow2, .vmdk, .vhd or raw), headless, the serial
    console to the file ``serial``; ``drives`` are more disks (a NoCloud seed), read-only."""
    formats = {".qcow2": "qcow2", ".vmdk": "vmdk", ".vhd": "vpc"}
    argv = [
        qemu_binary(), *accel.args(), "-m", str(memory_mib), "-smp", str(cpus),
        "-display", "none", "-monitor", "none", "-no-reboot", "-serial", f"file:{serial}",
        "-drive", f"file={disk},if=virtio,format={formats.get(disk.suffix, 'raw')}",
    ]  # fmt: skip
    for drive in drives:
        argv += ["-drive", f"file={drive},if=virtio,format=raw,readonly=on"]
    if uefi:
        argv += ["-bios", str(ovmf_firmware())]
    if snapshot:
        argv.append("-snapshot")
    argv += list(extra)
    serial.write_bytes(b"")
    stderr = serial.with_name(serial.name + ".stderr")
    with open(stderr, "wb") as errors:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=errors, stderr=errors,
                                   start_new_session=True)
    return Guest(process, serial, stderr)


@dataclass(frozen=True)
class Probe:
    """What a KVM probe found: the accelerator to use and whether KVM itself failed (QEMU under KVM died
    or said so before the guest got anywhere), which no other guest on this host would get past either.
    A guest that just did not reach its init in time may be the guest's own doing (a kernel that does
    not boot), so that failure is not the host's."""

    accel: Accel
    host_fault: bool = False


def probe_accel(disk: Path, scratch: Path, *, uefi: bool = False, timeout: float = KVM_PROBE_SECONDS) -> Accel:
    """KVM when a probe boot of ``disk`` under KVM starts the kernel's init within ``timeout`` seconds,
    else TCG; the disk is not written (QEMU's ``-snapshot``)."""
    return probe_kvm(disk, scratch, uefi=uefi, timeout=timeout).accel


def probe_kvm(disk: Path, scratch: Path, *, uefi: bool = False, timeout: float = KVM_PROBE_SECONDS) -> Probe:
    """:func:`probe_accel`, saying whether a failure was KVM's own (always a real probe: nothing is
    remembered here, see ``kiln.runtime.kvm_memo``)."""
    if not KVM_DEVICE.exists():
        return Probe(Accel("tcg", f"{KVM_DEVICE} does not exist"))
    if not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        return Probe(Accel("tcg", f"{KVM_DEVICE} is not readable and writable by this user"))
    kvm = Accel("kvm", "")
    guest = boot(disk, accel=kvm, serial=scratch / "kvm-probe.serial", uefi=uefi, snapshot=True)
    started = time.monotonic()
    try:
        reached = guest.wait_for(KERNEL_STARTED_INIT, timeout)
    finally:
        guest.stop()
    if reached:
        return Probe(Accel("kvm", f"a probe boot under KVM reached {reached!r} in {time.monotonic() - started:.1f} s"))
    console = [line for line in guest.console().splitlines() if line.strip()]
    errors = guest.errors().splitlines()
    last = ((errors[-1] if errors else "") or (console[-1] if console else "no console output")).strip()[:160]
    status = guest.process.returncode
    if status not in (None, -9):  # it ended on its own, not by our kill
        # killed by a signal (an assertion in QEMU's KVM code) or an error naming KVM: the host's KVM failed;
        # a clean exit is the guest powering off or resetting (-no-reboot), its own doing
        host_fault = status < 0 or any("kvm" in line.lower() for line in errors)
        return Probe(Accel("tcg", f"{KVM_DEVICE} exists but QEMU under KVM exited (status {status}) "
                                  f"before the kernel's init: {last}"), host_fault)
    return Probe(Accel("tcg", f"{KVM_DEVICE} exists but a probe boot under KVM did not start the kernel's init "
                              f"within {timeout:g} s (last: {last})"))
