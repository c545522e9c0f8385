"""An instance on the network has a network namespace of its own behind slirp4netns: it reaches out
(a server on the host's own non-loopback address stands for "out"; no internet needed), never the
host's loopback, link-local or metadata addresses unless launched with host-local access, and its
helper process lives exactly as long as its sandbox (stop, terminate, kill -9 of kiln)."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kiln.runtime import instances, netns, procs
from kiln.runtime.exec import exec_in
from kiln.runtime.records import Instance
from kiln.runtime.recovery import recover

HOST_ALIAS = "10.0.2.2"  # slirp4netns's address of the host, seen from the instance
METADATA_URL = "http://169.254.169.254/latest/meta-data/"


@dataclass
class Served:
    address: str
    port: int
    asked: list[str] = field(default_factory=list)

    def url(self, address: str | None = None) -> str:
        return f"http://{address or self.address}:{self.port}/secret"


def _host_address() -> str:
    """The host's own address on its primary interface (where its default route leaves)."""
    route = subprocess.run(["ip", "-4", "-o", "route", "get", "1.1.1.1"], capture_output=True, text=True)
    fields = route.stdout.split()
    if route.returncode != 0 or "src" not in fields:
        pytest.skip("the host has no IPv4 default route: no non-loopback address to serve on")
    return fields[fields.index("src") + 1]


@pytest.fixture
def serve() -> Iterator[Callable[[str], Served]]:
    """``serve(address)``: an HTTP server on the host at ``address`` that records what it was asked."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(address: str) -> Served:
        served = Served(address, 0)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.asked.append(self.path)
                body = b"host secret\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer((address, 0), Handler)
        served.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return served

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _fetch(instance: Instance, url: str) -> tuple[int, str, str]:
    result = exec_in(instance.id, ["wget", "-q", "-O", "-", url], timeout=30)
    return result.exit_code, result.stdout, result.stderr


def _net_inode(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def _members_of_netns(inode: int) -> list[int]:
    found = []
    for pid in procs.all_pids():
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == inode:
                found.append(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def _assert_helper(instance: Instance) -> procs.ProcessId:
    helper = instance.network_helper
    assert helper is not None and procs.is_alive(helper.pid, helper.start_time)
    argv = procs.cmdline(helper.pid)
    assert Path(argv[0]).name == "slirp4netns" and str(instance.init.pid) in argv  # type: ignore[union-attr]
    return helper


def test_an_instance_on_the_network_reaches_out_but_not_the_hosts_local_addresses(
    busybox_rootfs: Path, cleanup_instances: list[str], serve: Callable[[str], Served]
) -> None:
    local, outside = serve("127.0.0.1"), serve(_host_address())
    instance = instances.launch([busybox_rootfs], network="host")
    cleanup_instances.append(instance.id)
    assert _net_inode(instance.init.pid) != _net_inode(os.getpid())  # type: ignore[union-attr]

    assert _fetch(instance, outside.url()) == (0, "host secret\n", "")
    assert outside.asked == ["/secret"]
    via_alias = _fetch(instance, local.url(HOST_ALIAS))
    assert via_alias[0] != 0 and "unreachable" in via_alias[2]  # the NAT refuses the host's loopback
    assert _fetch(instance, local.url())[0] != 0  # 127.0.0.1 is the instance's own loopback
    assert local.asked == []
    metadata = _fetch(instance, METADATA_URL)
    assert metadata[0] != 0 and "Permission denied" in metadata[2]  # the prohibit route, not a timeout

    # Root in the instance cannot lift the refusal: no CAP_NET_ADMIN, no raw packets to the NAT.
    lifted = exec_in(instance.id, ["ip", "route", "del", "prohibit", "169.254.0.0/16"])
    assert lifted.exit_code != 0 and "not permitted" in lifted.stderr
    assert "prohibit 169.254.0.0/16" in exec_in(instance.id, ["ip", "route"]).stdout
    raw = exec_in(instance.id, ["arping", "-c", "1", "-w", "1", "-I", "tap0", HOST_ALIAS])  # a packet socket
    assert raw.exit_code != 0 and "not permitted" in raw.stderr
    assert exec_in(instance.id, ["cat", "/etc/resolv.conf"]).stdout.splitlines()[-1] == "nameserver 10.0.2.3"
    _assert_helper(instance)


def test_host_local_access_reaches_the_hosts_loopback_through_the_host_alias(
    busybox_rootfs: Path, cleanup_instances: list[str], serve: Callable[[str], Served]
) -> None:
    local = serve("127.0.0.1")
    instance = instances.launch([busybox_rootfs], network="host", host_local=True)
    cleanup_instances.append(instance.id)
    assert instance.describe()["Kiln"]["HostLocalNetwork"] is True
    assert _fetch(instance, local.url(HOST_ALIAS)) == (0, "host secret\n", "")
    assert local.asked == ["/secret"]
    assert "prohibit" not in exec_in(instance.id, ["ip", "route"]).stdout


def test_host_local_access_needs_a_network(busybox_rootfs: Path) -> None:
    from kiln.errors import InvalidInput

    with pytest.raises(InvalidInput, match="need a network"):
        instances.launch([busybox_rootfs], network="none", host_local=True)
    assert instances.list_instances() == []


def test_the_helper_ends_with_stop_and_terminate_and_the_namespace_with_it(
    busybox_rootfs: Path, cleanup_instances: list[str], serve: Callable[[str], Served]
) -> None:
    outside = serve(_host_address())
    instance = instances.launch([busybox_rootfs], network="host")
    cleanup_instances.append(instance.id)
    helper, namespace = _assert_helper(instance), _net_inode(instance.init.pid)  # type: ignore[union-attr]

    instances.stop(instance.id)
    assert not procs.is_alive(helper.pid, helper.start_time)
    assert _members_of_netns(namespace) == []

    started = instances.start(instance.id)
    restarted = _assert_helper(started)
    assert restarted != helper
    assert _fetch(started, outside.url())[0] == 0  # a new namespace, connected again

    instances.terminate(instance.id)
    assert not procs.is_alive(restarted.pid, restarted.start_time)
    assert not started.dir.exists()


def test_the_helper_exits_by_itself_when_the_sandbox_dies(busybox_rootfs: Path, cleanup_instances: list[str]) -> None:
    instance = instances.launch([busybox_rootfs], network="host")
    cleanup_instances.append(instance.id)
    helper = _assert_helper(instance)
    os.kill(instance.init.pid, signal.SIGKILL)  # type: ignore[union-attr]  # no kiln code runs
    assert procs.wait_gone([helper], 10.0)
    assert recover().stopped == [instance.id]


def test_a_failing_helper_fails_the_launch_and_leaves_nothing(
    busybox_rootfs: Path, monkeypatch: pytest.MonkeyPatch, kiln_home: Path
) -> None:
    from kiln.errors import SystemRequirement

    real = netns.slirp_argv
    no_such_pid = 2**22 + 1  # above the kernel's largest pid_max
    monkeypatch.setattr(netns, "slirp_argv", lambda init_pid, **options: real(no_such_pid, **options))
    with pytest.raises(SystemRequirement, match="network failed to start"):
        instances.launch([busybox_rootfs], network="host")
    (failed,) = instances.list_instances()
    assert failed.state == "terminated" and not failed.dir.exists()
    assert failed.init is None and failed.network_helper is None


LAUNCHER = textwrap.dedent(
    """
    import sys, time
    from kiln.runtime import instances, netns

    mode, layer = sys.argv[1], sys.argv[2]
    if mode == "half":
        # Die after the helper started and before the instance recorded it.
        real_start = netns.start

        def start_then_hang(link, init_pid, instance_dir, **options):
            helper = real_start(link, init_pid, instance_dir, **options)
            print(helper.pid, helper.start_time, instance_dir.name, flush=True)
            time.sleep(600)

        netns.start = start_then_hang
        instances.launch([layer], network="host", owned=True)
    else:
        instance = instances.launch([layer], network="host", owned=True)
        print(instance.network_helper.pid, instance.network_helper.start_time, instance.id, flush=True)
        time.sleep(600)
    """
)


def _killed_launcher(mode: str, layer: Path) -> list[str]:
    """Run the launcher, let it report, kill -9 it; returns what it printed."""
    process = subprocess.Popen([sys.executable, "-c", LAUNCHER, mode, str(layer)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
    assert line, "the launcher died before it launched"
    return line.split()


def test_kill_9_of_kiln_hands_the_instance_back_and_terminate_ends_its_helper(
    busybox_rootfs: Path, kiln_home: Path
) -> None:
    pid, started, instance_id = _killed_launcher("owned", busybox_rootfs)
    helper = procs.ProcessId(int(pid), int(started))
    assert procs.is_alive(helper.pid, helper.start_time)  # the instance runs on, and its network
    assert recover().orphaned == [instance_id]  # handed to the build layer, which terminates it
    namespace = _net_inode(instances.get(instance_id).init.pid)  # type: ignore[union-attr]
    instances.terminate(instance_id, force=True)
    assert not procs.is_alive(helper.pid, helper.start_time)
    assert _members_of_netns(namespace) == []


def test_kill_9_between_starting_and_recording_the_helper(busybox_rootfs: Path, kiln_home: Path) -> None:
    pid, started, instance_id = _killed_launcher("half", busybox_rootfs)
    helper = procs.ProcessId(int(pid), int(started))
    recover()  # (also run when this process first opened the database)
    after = instances.get(instance_id)
    assert after.state == "terminated" and "launch interrupted" in (after.state_reason or "")
    assert after.network_helper is None  # never recorded: it went with the sandbox it was tied to
    assert procs.wait_gone([helper], 10.0)
