"""The processes of a running VM instance: QEMU (daemonized, its pid from its pid file) and the
instance's metadata endpoint (``kiln.runtime.vm_metadata``), both started together and stopped by pid.

QEMU runs the root volume (a qcow2 overlay) and the NoCloud seed as virtio disks, the serial console
appended to the instance's console log, a QMP socket for the power button, and a user-mode network
on 169.254.0.0/16: the guest gets 169.254.0.15 by DHCP, its SSH port is forwarded from a loopback
port of the host, and 169.254.169.254:80 is forwarded to the metadata endpoint.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kiln.errors import SystemRequirement
from kiln.runtime import procs, qemu, qemu_qmp, vm_metadata, vm_relay
from kiln.runtime.records import Instance

GUEST_NETWORK = "169.254.0.0/16"
GUEST_ADDRESS = "169.254.0.15"  # the first address QEMU's DHCP server hands out on that network
METADATA_ADDRESS = "169.254.169.254"
POWERDOWN_GRACE = 60.0  # seconds the guest gets to shut down after the power button, then SIGKILL
READY_TIMEOUT = 10.0
_children: dict[int, subprocess.Popen[bytes]] = {}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_metadata(vm: dict[str, Any], directory: Path, port: int) -> subprocess.Popen[bytes]:
    """Start the metadata endpoint on loopback ``port`` (readiness: :func:`_metadata_ready`)."""
    reap_finished()
    config = Path(vm["metadata_config"])
    config.with_suffix(".port").unlink(missing_ok=True)
    with open(directory / "metadata.log", "ab") as log:
        # standard library only: run as a script, isolated from the environment
        server = subprocess.Popen([sys.executable, "-I", "-S", vm_metadata.__file__, str(config), str(port)],
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    _children[server.pid] = server
    return server


def _metadata_ready(server: subprocess.Popen[bytes], vm: dict[str, Any], directory: Path) -> procs.ProcessId:
    """The started endpoint once it listens (it writes its port file then); SystemRequirement if it
    ended or did not get there within READY_TIMEOUT."""
    port_file = Path(vm["metadata_config"]).with_suffix(".port")
    deadline = time.monotonic() + READY_TIMEOUT
    identity = procs.identify(server.pid)
    while not port_file.exists() or identity is None:
        if server.poll() is not None or time.monotonic() > deadline:
            stop_process(identity)
            raise SystemRequirement(f"the instance's metadata endpoint did not start: see {directory / 'metadata.log'}")
        time.sleep(0.01)
    return identity


def qemu_argv(instance: Instance, vm: dict[str, Any], *, ssh_port: int, metadata_port: int) -> list[str]:
    directory = instance.dir
    relay = f"{sys.executable} -I -S {vm_relay.__file__} 127.0.0.1 {metadata_port}"
    netdev = (f"user,id=net0,net={GUEST_NETWORK},hostname={instance.hostname},"
              f"hostfwd=tcp:127.0.0.1:{ssh_port}-:22,guestfwd=tcp:{METADATA_ADDRESS}:80-cmd:{relay}")
    argv = [
        qemu.qemu_binary(), "-name", f"kiln-{instance.id}", *qemu.Accel(vm["accel"], "").args(),
        "-m", str(instance.memory_mib), "-smp", str(instance.vcpus), "-display", "none", "-nodefaults",
        "-chardev", f"file,id=console,path={instance.console_log},append=on", "-serial", "chardev:console",
        # relative to QEMU's working directory, the instance's: a socket's path is limited to 107 bytes
        "-qmp", f"unix:{Path(vm['qmp']).name},server=on,wait=off",
        "-drive", f"file={vm['root']},if=virtio,format=qcow2,discard=unmap",
        "-drive", f"file={vm['seed']},if=virtio,format=raw,readonly=on",
        "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
        "-device", "virtio-rng-pci",
        "-daemonize", "-pidfile", str(directory / "qemu.pid"),
    ]  # fmt: skip
    if vm["boot_mode"] == "uefi":
        argv += ["-bios", str(qemu.ovmf_firmware())]
    return argv


def boot(instance: Instance) -> dict[str, Any]:
    """Start the metadata endpoint and QEMU; the record fields of the running VM."""
    vm = instance.vm
    assert vm is not None
    # the endpoint starts while QEMU does: the guest asks it nothing before its network is up
    ssh_port, metadata_port = free_port(), free_port()
    server = _start_metadata(vm, instance.dir, metadata_port)
    try:
        pid_file = instance.dir / "qemu.pid"
        pid_file.unlink(missing_ok=True)
        Path(vm["qmp"]).unlink(missing_ok=True)
        argv = qemu_argv(instance, vm, ssh_port=ssh_port, metadata_port=metadata_port)
        with open(instance.dir / "qemu.log", "ab") as log:
            # -daemonize: this returns once QEMU is set up; its exit status says whether it is running
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=False,
                                  cwd=Path(vm["qmp"]).parent)
        guest = procs.identify(int(pid_file.read_text())) if pid_file.exists() else None
        if done.returncode != 0 or guest is None:
            tail = (instance.dir / "qemu.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise SystemRequirement(f"QEMU did not start (status {done.returncode}): {' '.join(tail)[:400]}")
        try:
            metadata = _metadata_ready(server, vm, instance.dir)
        except BaseException:
            procs.kill_and_wait(guest)
            raise
    except BaseException:
        stop_process(procs.identify(server.pid))
        _children.pop(server.pid, None)
        server.wait(timeout=10)
        raise
    vm.update(ssh_port=ssh_port, metadata_helper=[metadata.pid, metadata.start_time])
    return {"paths": {**instance.paths, "vm": vm}, "init_pid": guest.pid, "init_start_time": guest.start_time,
            "monitor_pid": None, "monitor_start_time": None}


def metadata_helper(instance: Instance) -> procs.ProcessId | None:
    helper = (instance.vm or {}).get("metadata_helper")
    return procs.ProcessId(int(helper[0]), int(helper[1])) if helper else None


def stop_process(process: procs.ProcessId | None) -> None:
    if process is None:
        return
    procs.kill_and_wait(process)
    child = _children.pop(process.pid, None)
    if child is not None:
        child.wait(timeout=10)


def halt(instance: Instance, grace: float) -> None:
    """Power the VM off: the power button, up to ``grace`` seconds, then SIGKILL to QEMU's pid; then
    the metadata endpoint."""
    guest = instance.init
    vm = instance.vm or {}
    if guest is not None and procs.is_alive(guest.pid, guest.start_time):
        if grace > 0 and qemu_qmp.powerdown(Path(vm["qmp"])):
            procs.wait_gone([guest], grace)
        procs.kill_and_wait(guest)
    stop_process(metadata_helper(instance))


def reap_finished() -> None:
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            _children.pop(pid, None)
