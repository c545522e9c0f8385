"""The pieces of a VM's network namespace without a VM (kiln.runtime.vm_netns): the namespace QEMU is
exec'd in (with the instance's resolver when the host's is on its loopback), and the SSH forward from
a host loopback port through slirp4netns into the namespace, tried again when the port is taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kiln.runtime import netns, procs, vm_netns

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
