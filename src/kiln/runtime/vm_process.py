"""The process of a running VM instance: QEMU, daemonized, its pid from its pid file, stopped by pid.

QEMU runs the root volume (a qcow2 overlay) and the NoCloud seed as virtio disks, the serial console
appended to the instance's console log, a QMP socket (the power and reset buttons), a virtio-serial
port for kiln's exec agent (``kiln.runtime.vm_serial``), and a user-mode
network on 169.254.0.0/16: the guest gets 169.254.0.15 by DHCP, its gateway (the host) is 169.254.0.2
and its DNS server 169.254.0.3; each connection to
169.254.169.254:80 is answered by ``kiln.runtime.vm_metadata`` run for it (no endpoint process per
instance). Unless host-local addresses are allowed, QEMU runs in a network namespace of its own
(``kiln.runtime.vm_netns``: why, and how SSH gets in): its SSH forward listens on port 22 there and
slirp4netns forwards a host loopback port to it. With host-local addresses allowed, or no network,
QEMU binds the SSH forward on the host's loopback itself (port 0: the kernel picks a free one, so two
launches cannot race for it; the port is read back from the socket QEMU listens on).

Each connection to 169.254.169.254:8773 is answered by ``kiln.runtime.vm_s3_relay`` (the guest's
S3 steps), run for it the same way. A ``guestfwd`` ``cmd:`` process runs where QEMU runs: in the VM's
namespace, it reaches what the guest may reach (the outside), not the host's loopback, which the
build's network policy would refuse the relay anyway.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.documents.s3_relay_client import RELAY_PORT
from kiln.errors import SystemRequirement
from kiln.files import write_atomic
from kiln.runtime import netns, procs, qemu, qemu_qmp, records, vm_metadata, vm_netns, vm_s3_relay, vm_serial
from kiln.runtime.records import Instance

GUEST_NETWORK = "169.254.0.0/16"
# Named on the command line: QEMU's defaults for a network given by net= are net|0.0.2.2, .2.15 and .2.3
# (169.254.2.2 here), so without them the guest was 169.254.2.15 and 169.254.0.2 led nowhere
GATEWAY_ADDRESS = "169.254.0.2"  # the host as the guest sees it (see kiln.runtime.vm_netns)
GUEST_ADDRESS = "169.254.0.15"  # the first address QEMU's DHCP server hands out
DNS_ADDRESS = "169.254.0.3"
METADATA_ADDRESS = "169.254.169.254"
DAEMON_TIMEOUT = 60.0  # seconds QEMU may take to write its pid file
POWERDOWN_GRACE = 60.0  # seconds the guest gets to shut down after the power button, then SIGKILL
_children: dict[int, subprocess.Popen[bytes]] = {}


def ssh_listen(instance: Instance, ssh_port: int = 0) -> str:
    """Where QEMU's SSH forward listens: every address of the VM's own namespace, port 22 (reached from
    the host through slirp4netns), else the host's loopback (port 0: QEMU binds a free one)."""
    if vm_netns.isolated(instance.vm or {}, instance.host_local_network):
        return f":{vm_netns.GUEST_SSH_PORT}"
    return f"127.0.0.1:{ssh_port}"


def forwards(instance: Instance, vm: dict[str, Any], *, ssh_port: int = 0) -> list[str]:
    """The user network's forwards: SSH in, and one ``guestfwd`` per service on the guest's link."""
    endpoint = f"{sys.executable} -I -S {vm_metadata.__file__} {vm['metadata_config']}"
    return [
        f"hostfwd=tcp:{ssh_listen(instance, ssh_port)}-:22",
        f"guestfwd=tcp:{METADATA_ADDRESS}:80-cmd:{endpoint}",
    ] + ([f"guestfwd=tcp:{METADATA_ADDRESS}:{RELAY_PORT}-cmd:{sys.executable} -I {vm_s3_relay.__file__} "
          f"{vm['s3_relay_config']}"] if vm.get("s3_relay_config") else [])  # (not -S: the relay needs boto3)


def user_network(hostname: str, forwards: list[str], *, restrict: bool) -> str:
    """The ``-netdev`` of the guest's user network (id ``net0``)."""
    netdev = ",".join([f"user,id=net0,net={GUEST_NETWORK},host={GATEWAY_ADDRESS},dhcpstart={GUEST_ADDRESS}",
                       f"dns={DNS_ADDRESS},hostname={hostname}", *forwards])
    if restrict:  # no network: the guest contacts neither the host nor the outside
        netdev += ",restrict=on"  # (explicit forwards still work: QEMU's documented behaviour)
    return netdev


def qemu_argv(instance: Instance, vm: dict[str, Any], *, ssh_port: int = 0,
              metadata_port: int | None = None) -> list[str]:
    """QEMU's command line for the VM; ``ssh_port`` 0: QEMU binds a free one (:func:`listening_ports`).
    ``metadata_port`` is not used any more (the endpoint runs per guest connection)."""
    directory = instance.dir
    netdev = user_network(instance.hostname, forwards(instance, vm, ssh_port=ssh_port),
                          restrict=bool(vm.get("restrict_network")))
    argv = [
        qemu.qemu_binary(), "-name", f"kiln-{instance.id}", *qemu.Accel(vm["accel"], "").args(),
        "-m", str(instance.memory_mib), "-smp", str(instance.vcpus), "-display", "none", "-nodefaults",
        "-chardev", f"file,id=console,path={instance.console_log},append=on", "-serial", "chardev:console",
        # relative to QEMU's working directory, the instance's: a socket's path is limited to 107 bytes
        "-qmp", f"unix:{Path(vm['qmp']).name},server=on,wait=off",
        "-drive", f"file={vm['root']},if=virtio,format=qcow2,discard=unmap",
        "-drive", f"file={vm['seed']},if=virtio,format=raw,readonly=on",
        "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
        # kiln's exec agent in the guest (kiln.runtime.vm_serial): its port, the socket its host end
        # two ports, not 31: QEMU sets up two queues per port, which took a few ms of every launch
        "-device", "virtio-serial-pci,id=vserial0,max_ports=2",
        "-chardev", f"socket,id=kexec,path={vm_serial.SOCKET},server=on,wait=off",
        "-device", f"virtserialport,bus=vserial0.0,chardev=kexec,name={vm_serial.PORT_NAME}",
        "-device", "virtio-rng-pci",
        "-daemonize", "-pidfile", str(directory / "qemu.pid"),
    ]  # fmt: skip
    if vm["boot_mode"] == "uefi":
        argv += ["-bios", str(qemu.ovmf_firmware())]
    return argv


def _new_token_secret(vm: dict[str, Any]) -> None:
    """A fresh key for the metadata tokens of this boot (the tokens of the last one stop working)."""
    config = Path(vm["metadata_config"])
    write_atomic(config, json.dumps({**json.loads(config.read_text()), "token_secret": secrets.token_hex(32)}),
                 mode=0o600)


def _listening_sockets() -> dict[str, int]:
    """Socket inode → port of the IPv4 TCP sockets listening in this network namespace, asked of the
    kernel's sock_diag netlink interface (``/proc/net/tcp`` walks every hash bucket: milliseconds)."""
    sock_diag, by_family, request_dump, listen = 4, 20, 0x301, 10
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, sock_diag) as netlink:
        # inet_diag_req_v2: family, protocol, extensions, pad, states; then a zeroed inet_diag_sockid
        request = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 1 << listen) + bytes(48)
        netlink.send(struct.pack("=IHHII", 16 + len(request), by_family, request_dump, 1, 0) + request)
        found: dict[str, int] = {}
        while True:
            data, offset = netlink.recv(1 << 16), 0
            while offset < len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind in (2, 3) or length < 16:  # NLMSG_ERROR, NLMSG_DONE
                    return found
                # inet_diag_msg after the 16-byte header: the source port at 4 (big-endian), the inode at 68
                found[str(struct.unpack_from("=I", data, offset + 16 + 68)[0])] = struct.unpack_from(
                    ">H", data, offset + 16 + 4)[0]
                offset += (length + 3) & ~3


def listening_ports(pid: int) -> list[int]:
    """The IPv4 TCP ports process ``pid`` listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    try:
        listening = _listening_sockets()
    except OSError:  # no sock_diag here (a restricted container): the slow way
        listening = {}
        for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                listening[fields[9]] = int(fields[1].split(":")[1], 16)
    return sorted(port for inode, port in listening.items() if inode in inodes)


def _spawn_qemu(instance: Instance, vm: dict[str, Any], link: netns.Link | None) -> subprocess.Popen[bytes]:
    """Start QEMU (not waiting for it to be set up). With ``link`` (isolated), in a namespace of its own,
    holding the link's sandbox end."""
    argv = qemu_argv(instance, vm)
    if link is not None:
        argv = vm_netns.in_namespace(argv, instance.dir)
    with open(instance.dir / "qemu.log", "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=Path(vm["qmp"]).parent,
                                pass_fds=(link.sandbox_fd,) if link is not None else ())


def _daemon(starting: subprocess.Popen[bytes], pid_file: Path) -> procs.ProcessId | None:
    """The process ``-daemonize`` forks, as soon as its pid file names it (early: QEMU then goes on
    setting up the machine, which kiln's own work overlaps); None when QEMU exited without one."""
    deadline = time.monotonic() + DAEMON_TIMEOUT
    while time.monotonic() < deadline:
        exited = starting.poll() is not None
        try:
            text = pid_file.read_text()
        except FileNotFoundError:
            text = ""
        if text.endswith("\n"):  # written whole
            return procs.identify(int(text))
        if exited:
            return None
        time.sleep(0.001)
    raise SystemRequirement(f"QEMU wrote no pid file ({pid_file}) in {DAEMON_TIMEOUT:.0f} s")


def _failure(starting: subprocess.Popen[bytes], instance: Instance) -> SystemRequirement | None:
    """Wait until QEMU is set up (its first process exits once the daemon runs the machine); what went
    wrong, with the end of its log, if it failed."""
    status = starting.wait()
    if status == 0:
        return None
    tail = (instance.dir / "qemu.log").read_text(errors="replace").strip().splitlines()[-3:]
    return SystemRequirement(f"QEMU did not start (status {status}): {' '.join(tail)[:400]}")


def _own_ssh_port(guest: procs.ProcessId, starting: subprocess.Popen[bytes]) -> int:
    """The port of the SSH forward QEMU binds on the host's loopback (the one TCP socket it listens on:
    QMP is a unix socket), as soon as it is bound (QEMU goes on setting up the machine)."""
    deadline = time.monotonic() + DAEMON_TIMEOUT
    while True:
        settled = starting.poll() is not None or time.monotonic() > deadline
        try:
            ports = listening_ports(guest.pid)
        except FileNotFoundError:  # QEMU is gone
            ports, settled = [], True
        if ports or settled:
            break
        time.sleep(0.004)
    if len(ports) != 1:
        raise SystemRequirement(f"QEMU (pid {guest.pid}) listens on ports {ports}, not the one SSH forward")
    return ports[0]


def boot(instance: Instance, running: Callable[[dict[str, Any]], Instance], *, recorded: bool = True) -> Instance:
    """Start QEMU (and, isolated, the helper that connects its namespace) and record the VM running:
    ``running`` records the fields given (the instance's processes and paths) and returns the
    instance, which this returns once QEMU has set up the machine.

    kiln's part runs while QEMU sets up the machine: QEMU's pid recorded as soon as its pid file names
    it, its namespace connected (or the port of its SSH forward read as soon as it is bound), the
    instance recorded running. A QEMU that then fails to set up is stopped and its error raised (the
    caller ends the instance as for any failed boot). An instance not ``recorded`` yet (a launch:
    ``running`` records it) is covered meanwhile by its launch's claim (``kiln.runtime.launch_claims``)."""
    vm = instance.vm
    assert vm is not None
    pid_file = instance.dir / "qemu.pid"
    pid_file.unlink(missing_ok=True)
    Path(vm["qmp"]).unlink(missing_ok=True)
    (instance.dir / vm_serial.SOCKET).unlink(missing_ok=True)
    link = netns.Link() if vm_netns.isolated(vm, instance.host_local_network) else None
    guest: procs.ProcessId | None = None
    helper: procs.ProcessId | None = None
    qemu_failed: SystemRequirement | None = None
    try:
        starting = _spawn_qemu(instance, vm, link)
        try:
            if link is not None:
                link.sandbox_started()  # only QEMU holds the write end: the helper ends with it
            _new_token_secret(vm)  # read when the guest first asks for a token, seconds from now
            guest = _daemon(starting, pid_file)
            if guest is None:
                qemu_failed = _failure(starting, instance) or SystemRequirement(
                    f"QEMU set up but named no process in {pid_file}")
                raise qemu_failed
            if recorded:
                # at once: if kiln dies before the boot is done, recovery stops this QEMU by its pid (and
                # with it its network helper, which ends with QEMU). Not synced to disk: a process's pid
                # only matters while this boot of the host lasts, and an OS crash ends QEMU too
                records.update(instance.id, init_pid=guest.pid, init_start_time=guest.start_time,
                               transition=instance.transition, durable=False)
            if link is not None:
                helper, ssh_port = vm_netns.connect(link, guest, instance.dir)
            else:
                ssh_port = _own_ssh_port(guest, starting)
            vm.update(ssh_port=ssh_port, metadata_helper=None)
            booted = running({
                "paths": {**instance.paths, "vm": vm,
                          "network_helper": [helper.pid, helper.start_time] if helper else None},
                "init_pid": guest.pid, "init_start_time": guest.start_time,
                "monitor_pid": None, "monitor_start_time": None})  # fmt: skip
            qemu_failed = _failure(starting, instance)
            if qemu_failed is not None:
                raise qemu_failed
        except BaseException as error:
            # QEMU failing takes its network helper down with it: then QEMU's own error is the one to tell
            own = None
            if error is not qemu_failed and isinstance(error, Exception) and guest is not None:
                own = _failure(starting, instance)
            if guest is not None:
                procs.kill_and_wait(guest)
            netns.stop(helper)
            if starting.poll() is None:  # waiting for its daemon, which is gone
                starting.kill()
            starting.wait()
            if own is not None:
                raise own from error
            raise
    finally:
        if link is not None:
            link.close()
    return booted


def metadata_helper(instance: Instance) -> procs.ProcessId | None:
    """The metadata endpoint process of an instance booted by an older kiln (one per VM then)."""
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
    """Power the VM off: the power button, up to ``grace`` seconds, then SIGKILL to QEMU's pid (then its
    network helper's, and an older kiln's metadata endpoint)."""
    guest = instance.init
    vm = instance.vm or {}
    if guest is not None and procs.is_alive(guest.pid, guest.start_time):
        if grace > 0 and qemu_qmp.powerdown(Path(vm["qmp"])):
            procs.wait_gone([guest], grace)
        procs.kill_and_wait(guest)
    netns.stop(instance.network_helper)  # (it would end with QEMU by itself, a little later)
    stop_process(metadata_helper(instance))


def reset(instance: Instance) -> bool:
    """Reboot the guest in place (QMP ``system_reset``): same QEMU process, same ports, same root
    volume; False when its QEMU is not running to be asked."""
    guest = instance.init
    if guest is None or not procs.is_alive(guest.pid, guest.start_time):
        return False
    return qemu_qmp.reset(Path((instance.vm or {})["qmp"]))


def reap_finished() -> None:
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            _children.pop(pid, None)
