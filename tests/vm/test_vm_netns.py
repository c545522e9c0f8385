"""A VM instance's network keeps off the host's local addresses unless they are allowed
(kiln.runtime.vm_netns). Two VMs of the bootable Debian image (tests/vm/vm_image.yaml), booted at once
under KVM when usable, else TCG (minutes). Never skipped.

On the host: a listener on 127.0.0.1, one on a link-local address the host has (169.254.77.7, put on
``lo`` for the test) and one on the host's own outside-of-loopback address (its first global IPv4
address; without one, 198.51.100.7 on ``lo``). The guest, as root, routes the link-local address
through its gateway (169.254.0.2), as a component could.

- default (``--vm``): QEMU runs in a network namespace of its own; the guest reaches the outside
  address, but neither the loopback listener through 169.254.0.2 nor the link-local one; SSH, exec
  and the metadata endpoint still work. QEMU killed with SIGKILL: its network helper ends with it and
  recovery leaves no process or namespace; started again and terminated: the same.
- ``--host-local-network``: QEMU runs in the host's namespace as before; the guest reaches the
  loopback listener through 169.254.0.2 and the link-local one.

One test, so both VMs boot at once.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.vm import test_vm_boot as vm_boot
from tests.vm.test_vm_boot import VmImage, _exec, _json, _wait_for_ssh

from kiln.runtime import procs

vm_image = vm_boot.vm_image  # this module's own KILN_HOME with the session's bootable image
in_vm_home = vm_boot.in_vm_home  # each test works in it

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)"),
    pytest.mark.network,
    pytest.mark.slow,
]

LINK_LOCAL = "169.254.77.7"
STAND_IN_OUTSIDE = "198.51.100.7"  # TEST-NET-2, when the host has no global address of its own
GATEWAY = "169.254.0.2"
PROBE = """
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=15) as s:
            print(target, "reached", s.recv(64).decode().strip())
    except OSError as error:
        print(target, "failed", type(error).__name__)
"""


class Listener:
    """A TCP listener on the host that greets every connection with its name."""

    def __init__(self, address: str, name: str) -> None:
        self.name = name
        self.sock = socket.create_server((address, 0))
        self.target = f"{address}:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(self.name.encode() + b"\n")

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)


def _global_address() -> str | None:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        address = ipaddress.ip_interface(line.split()[3]).ip
        if not address.is_link_local and not address.is_loopback:
            return str(address)
    return None


@dataclass
class Host:
    loopback: Listener
    link_local: Listener
    outside: Listener


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    """The three listeners; addresses added to ``lo`` for the test are removed after it."""
    outside = _global_address()
    added = [LINK_LOCAL] + ([] if outside else [STAND_IN_OUTSIDE])
    for address in added:
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True, capture_output=True)
    listeners = Host(Listener("127.0.0.1", "loopback"), Listener(LINK_LOCAL, "link-local"),
                     Listener(outside or STAND_IN_OUTSIDE, "outside"))
    try:
        yield listeners
    finally:
        for listener in (listeners.loopback, listeners.link_local, listeners.outside):
            listener.close()
        for address in added:
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], check=False, capture_output=True)


def _probe(kiln, instance_id: str, host: Host) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """What the guest reaches: target → "reached NAME" or "failed ERROR"."""
    loopback_port = host.loopback.target.rsplit(":", 1)[1]
    targets = [f"{GATEWAY}:{loopback_port}", host.link_local.target, host.outside.target]
    script = (f"ip route replace {LINK_LOCAL}/32 via {GATEWAY} && "
              f"python3 -c '{PROBE}' {' '.join(targets)}")
    lines = _exec(kiln, instance_id, script).splitlines()
    found = dict(line.split(" ", 1) for line in lines)
    return {"loopback": found[targets[0]], "link-local": found[targets[1]], "outside": found[targets[2]]}


def _net_namespace(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def _holders(namespace: int) -> list[int]:
    """Processes in, or holding a descriptor of, the network namespace ``namespace``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / "net").st_ino == namespace:
                found.append(int(entry.name))
                continue
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        if f"net:[{namespace}]" in links:
            found.append(int(entry.name))
    return found


def test_host_local_addresses_are_reached_from_a_vm_only_when_allowed(  # type: ignore[no-untyped-def]
        in_vm_home: VmImage, host: Host, kiln) -> None:
    from kiln.runtime import instances, recovery

    ami = in_vm_home.ami
    isolated = _json(kiln, "instance", "run", ami, "--vm")
    allowed = _json(kiln, "instance", "run", ami, "--vm", "--host-local-network")
    for launched in (isolated, allowed):  # both boot at once
        _wait_for_ssh(kiln, in_vm_home.home, launched["InstanceId"], launched["Kiln"]["Accelerator"])

    # the default: QEMU in a network namespace of its own, connected by its network helper
    instance_id = isolated["InstanceId"]
    record = instances.get(instance_id)
    guest, helper = record.init, record.network_helper
    assert guest is not None and helper is not None and procs.is_alive(helper.pid, helper.start_time)
    namespace = _net_namespace(guest.pid)
    assert namespace != _net_namespace(os.getpid()), "QEMU runs in a network namespace of its own"
    assert isolated["Kiln"]["HostLocalNetwork"] is False
    reached = _probe(kiln, instance_id, host)
    assert reached["outside"] == "reached outside", reached
    assert reached["loopback"].startswith("failed"), reached
    assert reached["link-local"].startswith("failed"), reached
    # SSH (the exec above) and the metadata endpoint still work; the guest has the address kiln names
    assert f"ami={ami}\n" in _exec(kiln, instance_id, vm_boot.IMDS)
    assert f" {isolated['PrivateIpAddress']}/16 " in _exec(kiln, instance_id, "ip -4 -o addr show")

    # host-local addresses allowed: QEMU in the host's namespace, 169.254.0.2 is the host's loopback
    record = instances.get(allowed["InstanceId"])
    assert record.init is not None and record.network_helper is None and record.host_local_network
    assert allowed["Kiln"]["HostLocalNetwork"] is True
    assert _net_namespace(record.init.pid) == _net_namespace(os.getpid())
    reached = _probe(kiln, allowed["InstanceId"], host)
    assert reached == {"loopback": "reached loopback", "link-local": "reached link-local",
                       "outside": "reached outside"}, reached
    assert kiln("instance", "terminate", allowed["InstanceId"], "--force").exit_code == 0
    assert not procs.is_alive(record.init.pid, record.init.start_time)

    # QEMU killed with SIGKILL: its helper ends with it; recovery leaves no process and no namespace
    os.kill(guest.pid, 9)
    assert procs.wait_gone([guest, helper], 30), "the network helper ended with QEMU"
    assert instance_id in recovery.recover().stopped
    assert _holders(namespace) == []

    # started again (a new namespace and helper) and terminated: nothing of it remains either
    assert kiln("instance", "start", instance_id).exit_code == 0
    again = instances.get(instance_id)
    assert again.init is not None and again.network_helper is not None
    namespace = _net_namespace(again.init.pid)
    assert kiln("instance", "terminate", instance_id, "--force").exit_code == 0
    assert not procs.is_alive(again.init.pid, again.init.start_time)
    assert not procs.is_alive(again.network_helper.pid, again.network_helper.start_time)
    assert _holders(namespace) == []
