"""The pieces of a VM's network namespace without a VM (kiln.runtime.vm_netns): the namespace QEMU is
exec'd in (with the instance's resolver when the host's is on its loopback), the SSH forward from
a host loopback port through slirp4netns into the namespace, tried again when the port is taken, and
QEMU's user network itself with a tap device standing in for the guest's NIC (seconds, no guest OS):
the gateway 169.254.0.2 reaches the host's loopback only when QEMU is not in a namespace of its own."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kiln.runtime import netns, procs, sandbox, vm_netns

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

LISTENER = """
import socket
server = socket.create_server(("0.0.0.0", 22))
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        conn.sendall(b"SSH-2.0-stand-in\\n")
"""


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def test_qemu_is_execed_in_a_namespace_of_its_own_with_a_resolver_it_can_reach(tmp_path: Path) -> None:
    loopback, outside = tmp_path / "loopback.conf", tmp_path / "outside.conf"
    loopback.write_text("# systemd-resolved\nnameserver 127.0.0.53\noptions edns0\n")
    outside.write_text("nameserver 192.0.2.53\n")
    assert vm_netns.loopback_resolver(loopback) and not vm_netns.loopback_resolver(outside)
    ours = os.readlink("/proc/self/ns/net")
    for host_resolv in (loopback, outside):
        argv = vm_netns.in_namespace(["readlink", "/proc/self/ns/net"], tmp_path, host_resolv_conf=host_resolv)
        assert argv[0].endswith("unshare") and _run(argv).strip() != ours
    # the host's resolver on its loopback: QEMU sees slirp4netns's forwarder instead, the host keeps its own
    host_before = Path("/etc/resolv.conf").read_text()
    seen = _run(vm_netns.in_namespace(["cat", "/etc/resolv.conf"], tmp_path, host_resolv_conf=loopback))
    assert f"nameserver {netns.DNS_FORWARDER}" in seen
    assert Path("/etc/resolv.conf").read_text() == host_before
    seen = _run(vm_netns.in_namespace(["cat", "/etc/resolv.conf"], tmp_path, host_resolv_conf=outside))
    assert seen == host_before


def test_the_ssh_forward_reaches_the_namespace_and_a_taken_port_is_passed_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # QEMU's stand-in: a listener on port 22 of a namespace of its own, holding the helper's link
    link = netns.Link()
    stand_in = subprocess.Popen(vm_netns.in_namespace([sys.executable, "-c", LISTENER], tmp_path),
                                stdout=subprocess.PIPE, text=True, pass_fds=(link.sandbox_fd,))
    helper: procs.ProcessId | None = None
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        assert stand_in.stdout is not None and stand_in.stdout.readline() == "listening\n"
        link.sandbox_started()
        ports = iter([taken.getsockname()[1]])  # the first port probed is taken meanwhile
        free = vm_netns.free_port
        monkeypatch.setattr(vm_netns, "free_port", lambda: next(ports, None) or free())
        qemu = procs.identify(stand_in.pid)
        assert qemu is not None
        helper, port = vm_netns.connect(link, qemu, tmp_path)
        assert port != taken.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as ssh:
            assert ssh.makefile("rb").readline() == b"SSH-2.0-stand-in\n"
        # the namespace refuses link-local addresses before anything is connected
        routes = _run([netns.nsenter_path(), f"--net=/proc/{stand_in.pid}/ns/net", "--", "ip", "route"])
        assert "prohibit 169.254.0.0/16" in routes
        # the stand-in killed: the helper ends with it (its exit fd), no stop needed
        stand_in.kill()
        stand_in.wait()
        assert procs.wait_gone([helper], 10)
    finally:
        taken.close()
        link.close()
        if stand_in.poll() is None:
            stand_in.kill()
            stand_in.wait()
        netns.stop(helper)


PROBE = """
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=10) as s:
            print("reached", s.recv(64).decode().strip())
    except OSError as error:
        print("failed", type(error).__name__)
"""


def _listener(address: str, name: str) -> socket.socket:
    server = socket.create_server((address, 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(name.encode() + b"\n")

    threading.Thread(target=serve, daemon=True).start()
    return server


def _outside_address() -> str:
    out = _run(["ip", "-4", "-o", "addr", "show", "scope", "global"])
    return str(ipaddress.ip_interface(out.split()[3]).ip) if out.strip() else "127.0.0.1"


def _guest_side(qemu_pid: int, tap: str) -> subprocess.Popen[bytes]:
    """A namespace standing in for the guest: QEMU's tap moved into it, addressed as the guest is."""
    from kiln.runtime.vm_process import GATEWAY_ADDRESS, GUEST_ADDRESS

    qemu_net = f"--net=/proc/{qemu_pid}/ns/net"
    deadline = time.monotonic() + 30
    while subprocess.run([netns.nsenter_path(), qemu_net, "--", "ip", "link", "show", tap],
                         capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "QEMU made no tap device"
        time.sleep(0.1)
    guest = subprocess.Popen([sandbox.unshare_path(), "--net", "--", "sleep", "120"])
    time.sleep(0.2)
    _run([netns.nsenter_path(), qemu_net, "--", "ip", "link", "set", tap, "netns", str(guest.pid)])
    commands = (f"link set lo up\nlink set {tap} up\naddr add {GUEST_ADDRESS}/16 dev {tap}\n"
                f"route add default via {GATEWAY_ADDRESS}\n")
    subprocess.run([netns.nsenter_path(), f"--net=/proc/{guest.pid}/ns/net", "--", "ip", "-batch", "-"],
                   input=commands.encode(), check=True, capture_output=True)
    return guest


@pytest.mark.parametrize("isolated", [True, False], ids=["own-namespace", "host-local-allowed"])
def test_qemus_user_network_reaches_the_hosts_loopback_through_its_gateway_only_when_allowed(
        tmp_path: Path, isolated: bool) -> None:
    """QEMU's user network for real, a tap device in a namespace of its own as the guest's NIC (no guest
    OS): the gateway 169.254.0.2 is the host's loopback only when QEMU runs in the host's namespace."""
    from kiln.runtime import qemu, vm_process

    loopback, outside = _listener("127.0.0.1", "loopback"), _listener(_outside_address(), "outside")
    tap = f"kt{os.getpid() % 100000}{int(isolated)}"
    argv = [qemu.qemu_binary(), "-machine", "none", "-nodefaults", "-display", "none",
            "-netdev", vm_process.user_network("stand-in", [], restrict=False),
            "-netdev", "hubport,id=h0,hubid=0,netdev=net0",
            "-netdev", f"tap,id=t0,ifname={tap},script=no,downscript=no", "-netdev", "hubport,id=h1,hubid=0,netdev=t0"]
    link = netns.Link()
    started = subprocess.Popen(vm_netns.in_namespace(argv, tmp_path) if isolated else argv,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(link.sandbox_fd,))
    helper: procs.ProcessId | None = None
    guest: subprocess.Popen[bytes] | None = None
    try:
        link.sandbox_started()
        qemu_process = procs.identify(started.pid)
        assert qemu_process is not None
        if isolated:
            helper, _ = vm_netns.connect(link, qemu_process, tmp_path)
        guest = _guest_side(started.pid, tap)
        targets = [f"{vm_process.GATEWAY_ADDRESS}:{loopback.getsockname()[1]}",
                   f"{outside.getsockname()[0]}:{outside.getsockname()[1]}"]
        reached = _run([netns.nsenter_path(), f"--net=/proc/{guest.pid}/ns/net", "--",
                        sys.executable, "-c", PROBE, *targets]).splitlines()
        assert reached == ["failed ConnectionRefusedError" if isolated else "reached loopback", "reached outside"]
    finally:
        for process in (started, guest):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        link.close()
        netns.stop(helper)
        loopback.close()
        outside.close()
