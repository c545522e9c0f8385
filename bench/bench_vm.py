"""VM instance launch overhead, side by side with plain QEMU on the same disk.

- kiln: ``run_instance(AMI, vm=…)`` with the AMI's disk cached (export and KVM probe done once
  before, reported as ``first_launch_s``): the launch checks, the instance's files (exec key from the
  pool, overlay copied from the empty one kept per disk, NoCloud seed written into the cached empty
  volume), QEMU daemonized and, while it sets up the machine, its SSH port read back and the
  instance's row written, running (with the AMI's pins and last launched time: one transaction) —
  until it returns.
- plain: ``qemu-img create`` of an overlay on the same cached disk plus ``qemu-system-x86_64
  -daemonize`` with the same accelerator, memory, CPUs, disk and user network.
- kiln's default network keeps the guest off the host's local addresses: QEMU in a network namespace
  of its own behind slirp4netns (``kiln.runtime.vm_netns``), which plain QEMU on the host's network
  does not do. So two more sides: kiln with host-local addresses allowed (QEMU on the host's network,
  as plain), and plain QEMU started by hand the same isolated way (``unshare --net``, then
  slirp4netns ``--disable-host-loopback`` until it is ready).

Medians of RUNS, interleaved; before each run, the key-pool refill a launch leaves running in the
background (``kiln.runtime.vm_keys``) is waited for. The AMI is busybox with a stand-in kernel: QEMU
starts, the guest does not boot, which is not what is measured (a boot under TCG takes minutes and
depends on the guest).
Goal: kiln's launch at most 1.2 times plain QEMU's (reported for each pair of like sides).
``phases_ms``: medians of kiln's launch by phase
(``files``: key, overlay, seed; ``boot``: from QEMU's start until it has set up the machine, with
kiln's records of the running VM written meanwhile; ``db``: the write of the instance's row,
within ``boot``; the rest of ``total`` is the checks and Python).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RUNS = 21


def _plain(disk: Path, work: Path, accel: list[str], memory: int, cpus: int, *, isolated: bool = False) -> float:
    """Plain QEMU on the host's network, or (``isolated``) in a network namespace of its own connected
    by slirp4netns, by hand: seconds until it runs (and, isolated, its namespace is connected)."""
    from kiln.runtime import procs

    overlay, pid_file = work / "plain.qcow2", work / "plain.pid"
    for path in (overlay, pid_file):
        path.unlink(missing_ok=True)
    started = time.perf_counter()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(disk), str(overlay)],
                   check=True)
    subprocess.run([*(["unshare", "--net", "--"] if isolated else []),
                    "qemu-system-x86_64", *accel, "-m", str(memory), "-smp", str(cpus), "-display", "none",
                    "-nodefaults", "-serial", f"file:{work / 'plain.serial'}",
                    "-drive", f"file={overlay},if=virtio,format=qcow2",
                    "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
                    "-daemonize", "-pidfile", str(pid_file)], check=True)  # fmt: skip
    qemu_pid = int(pid_file.read_text())
    helper = None
    try:
        if isolated:
            ready_r, ready_w = os.pipe()
            helper = subprocess.Popen(["slirp4netns", "--configure", "--disable-host-loopback",
                                       f"--ready-fd={ready_w}", str(qemu_pid), "tap0"], pass_fds=(ready_w,),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.close(ready_w)
            try:
                os.read(ready_r, 1)
            finally:
                os.close(ready_r)
        return time.perf_counter() - started
    finally:
        qemu = procs.identify(qemu_pid)
        if qemu is not None:
            procs.kill_and_wait(qemu)
        if helper is not None:
            helper.kill()
            helper.wait()


def _settled() -> None:
    """Wait until no key-pool refill a launch started (a detached ``ssh-keygen``) still runs, so it
    slows neither side's next run."""
    from kiln.runtime import vm_keys

    vm_keys.wait_refills()


@contextmanager
def _phases(spent: dict[str, list[float]]) -> Iterator[None]:
    """Time the launch's phases (module functions wrapped, put back after)."""
    from kiln.runtime import records, vm, vm_process

    wrapped = [(vm, "_prepare", "files"), (vm_process, "boot", "boot"), (records, "insert", "db"),
               (records, "update", "db")]
    saved = [(module, name, getattr(module, name)) for module, name, _ in wrapped]

    def timed(function: Callable[..., Any], phase: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[phase][-1] += time.perf_counter() - started
        return call

    for (module, name, phase), (_, _, function) in zip(wrapped, saved, strict=True):
        setattr(module, name, timed(function, phase))
    try:
        yield
    finally:
        for module, name, function in saved:
            setattr(module, name, function)


def run() -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="kiln-bench-vm-"))
    previous_home = os.environ.get("KILN_HOME")
    os.environ["KILN_HOME"] = str(workdir / "home")
    try:
        from kiln.db.engine import get_engine, reset_engines
        from kiln.runtime import instances, qemu
        from kiln.services.ec2.instances import VmOptions, run_instance
        from kiln.store import api
        from kiln.store.busybox import busybox_rootfs

        reset_engines()
        get_engine()
        tree = Path(busybox_rootfs(workdir / "rootfs"))
        (tree / "boot").mkdir(exist_ok=True)
        (tree / "boot" / "vmlinuz-6.1.0-99-cloud-amd64").write_bytes(b"a stand-in kernel\n")
        ami = api.import_rootfs(tree, name="bench-vm")
        started = time.perf_counter()
        first = run_instance(ami, vm=VmOptions())
        first_launch = time.perf_counter() - started
        instances.terminate(first.id, force=True)
        vm = first.vm or {}
        disk = Path(vm["backing"])
        accel = qemu.Accel(vm["accel"], "").args()
        kiln_times, plain_times, kiln_open_times, plain_isolated_times = [], [], [], []
        spent: dict[str, list[float]] = defaultdict(list)
        for _ in range(RUNS):
            _settled()
            for phase in ("files", "boot", "db"):
                spent[phase].append(0.0)
            with _phases(spent):
                started = time.perf_counter()
                instance = run_instance(ami, vm=VmOptions())
                kiln_times.append(time.perf_counter() - started)
            instances.terminate(instance.id, force=True)
            _settled()
            plain_times.append(_plain(disk, workdir, accel, first.memory_mib, first.vcpus))
            _settled()
            started = time.perf_counter()
            instance = run_instance(ami, vm=VmOptions(), host_local=True)
            kiln_open_times.append(time.perf_counter() - started)
            instances.terminate(instance.id, force=True)
            _settled()
            plain_isolated_times.append(_plain(disk, workdir, accel, first.memory_mib, first.vcpus, isolated=True))
        kiln_median, plain_median = statistics.median(kiln_times), statistics.median(plain_times)
        open_median, isolated_median = statistics.median(kiln_open_times), statistics.median(plain_isolated_times)
        return {
            "accelerator": vm["accel"],
            "first_launch_s": round(first_launch, 2),
            "launch_kiln_median_s": round(kiln_median, 3),
            "launch_plain_qemu_median_s": round(plain_median, 3),
            "launch_ratio": round(kiln_median / plain_median, 2),
            "launch_overhead_s": round(kiln_median - plain_median, 3),
            "launch_kiln_isolated_vs_plain_isolated": {
                "kiln_median_s": round(kiln_median, 3), "plain_median_s": round(isolated_median, 3),
                "ratio": round(kiln_median / isolated_median, 2)},
            "launch_kiln_host_local_vs_plain": {
                "kiln_median_s": round(open_median, 3), "plain_median_s": round(plain_median, 3),
                "ratio": round(open_median / plain_median, 2)},
            "phases_ms": {"total": round(kiln_median * 1000, 1),
                          **{phase: round(statistics.median(times) * 1000, 1) for phase, times in spent.items()}},
            "runs": RUNS,
        }
    finally:
        from kiln.db.engine import reset_engines

        reset_engines()
        if previous_home is None:
            os.environ.pop("KILN_HOME", None)
        else:
            os.environ["KILN_HOME"] = previous_home
        shutil.rmtree(workdir, ignore_errors=True)
