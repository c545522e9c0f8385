"""A VM instance's own network namespace: QEMU's user network kept off the host's local addresses.

QEMU's user network (libslirp) connects the guest's outbound connections as sockets of QEMU's
process, and maps the network's gateway (169.254.0.2) to the loopback of the namespace QEMU runs in;
QEMU 7.2 has no option to turn that off (libslirp's ``disable_host_loopback`` is not exposed), and
the other link-local addresses are connected literally. In the host's namespace a guest would reach
``kiln serve``, moto, anything on the host's 127.0.0.1, and a cloud host's link-local services.

So unless the instance may reach host-local addresses (``kiln:HostLocalNetwork: allow``), or has no
network at all (``restrict=on`` already keeps it in), QEMU starts in a network namespace of its own
(``unshare --net`` execs it: the namespace is QEMU's, it goes when QEMU and its helper are gone; no
``/run/netns`` name to leak) which is connected exactly as a sandbox's (``kiln.runtime.netns``):
``prohibit`` routes for 169.254.0.0/16 set before anything is connected, then slirp4netns with
``--disable-host-loopback``. Inside, 169.254.0.2 leads to the namespace's own loopback (where only
QEMU's SSH forward listens: the guest reaches its own SSH server), link-local destinations hit the
prohibit routes, and everything else leaves through slirp4netns as sockets of the host. The metadata
endpoint is a ``guestfwd`` whose ``cmd:`` process QEMU starts per connection: it needs no network.
The guest cannot undo any of this: the routes are in a namespace the guest has no process in. DNS:
QEMU asks the host's first name server; one on the host's loopback (systemd-resolved) is not there
in the namespace, so then QEMU also gets a mount namespace where ``/etc/resolv.conf`` names
slirp4netns's forwarder (see :func:`in_namespace`).

SSH in (kiln's exec, builds, users through ``SshPort``): QEMU's ``hostfwd`` listens on port 22 of
every address of its namespace, and slirp4netns forwards a port of the host's 127.0.0.1 to it
through its API socket (``add_hostfwd`` to the tap address). slirp4netns's API refuses port 0, so the
host port is one free when probed; taken meanwhile, the forward fails and another is tried.

Lifetimes: slirp4netns's ``--exit-fd`` is the read end of a pipe whose write end only QEMU holds, so
the helper exits as soon as QEMU does, also after ``kill -9`` of QEMU or of kiln; its pid is recorded
with the instance (``network_helper``, as a sandbox's) and stopped by pid on stop, terminate and
recovery; QEMU's own pid is recorded as soon as it runs (``vm_process.boot``; at a launch, with the
instance itself, and until then QEMU is found by its name: ``kiln.runtime.launch_claims``), so kiln
killed during a boot leaves nothing recovery cannot stop. With host-local addresses allowed QEMU runs in the host's
namespace as before: 169.254.0.2 is the host's loopback and link-local addresses are connected from
the host.

Not chosen: a named namespace under ``/run/netns`` (a mount that outlives a ``kill -9`` of kiln and
must be found and removed), a holder process per namespace (one more process to stop, and the
namespace would outlive QEMU), QEMU on a tap device behind slirp4netns (a bridge in the namespace,
and the guest would lose QEMU's ``guestfwd``: the metadata endpoint). A ``guestfwd`` ``cmd:`` process runs in the
namespace too: it reaches the outside but not the host's loopback, nor link-local addresses.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import time
from pathlib import Path

from kiln.errors import SystemRequirement
from kiln.runtime import netns, procs
from kiln.runtime.sandbox import unshare_path

API_SOCKET = "slirp.sock"  # in the instance's directory
GUEST_SSH_PORT = 22  # QEMU's SSH forward inside the namespace (the namespace's ports are its own)
TAP_ADDRESS = "10.0.2.100"  # slirp4netns's address for the namespace (its --configure default)
FORWARD_TRIES = 20
API_TIMEOUT = 5.0
HOST_RESOLV_CONF = Path("/etc/resolv.conf")


def isolated(vm: dict[str, object], host_local: bool) -> bool:
    """QEMU runs in a namespace of its own: a network, host-local addresses not allowed."""
    return not host_local and not vm.get("restrict_network")


def loopback_resolver(resolv_conf: Path = HOST_RESOLV_CONF) -> bool:
    """The host's first name server is on its loopback (e.g. systemd-resolved's 127.0.0.53)."""
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                return ipaddress.ip_address(fields[1].split("%")[0]).is_loopback
            except ValueError:
                return False
    return False


def in_namespace(argv: list[str], instance_dir: Path, *, host_resolv_conf: Path = HOST_RESOLV_CONF) -> list[str]:
    """``argv`` exec'd in a new network namespace (no fork: the namespace is the process's).

    QEMU forwards the guest's DNS to the first name server of ``/etc/resolv.conf``; one on the host's
    loopback is not there in the namespace, so then QEMU gets a mount namespace too, where
    ``/etc/resolv.conf`` names slirp4netns's DNS forwarder (which asks the host's resolvers)."""
    if not loopback_resolver(host_resolv_conf):
        return [unshare_path(), "--net", "--", *argv]
    resolv_conf = netns.resolv_conf(instance_dir)
    return [unshare_path(), "--net", "--mount", "--propagation", "private", "--",
            "/bin/sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv_conf), *argv]


def api_call(instance_dir: Path, request: dict[str, object]) -> dict[str, object]:
    """One request to the slirp4netns API socket in ``instance_dir``; its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(API_TIMEOUT)
        directory = os.open(instance_dir, os.O_PATH)  # a socket's path is limited to 107 bytes
        try:
            sock.connect(f"/proc/self/fd/{directory}/{API_SOCKET}")
        finally:
            os.close(directory)
        sock.sendall(json.dumps(request).encode())
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    answer = json.loads(reply or b"{}")
    return answer if isinstance(answer, dict) else {}


def free_port() -> int:
    """A loopback port free now (racy: another process may take it before it is used; see
    :func:`forward_ssh`)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def forward_ssh(instance_dir: Path, helper: procs.ProcessId) -> int:
    """A port of the host's 127.0.0.1 forwarded to QEMU's SSH forward in the namespace; the port."""
    last: object = None
    for _ in range(FORWARD_TRIES):
        port = free_port()
        answer = api_call(instance_dir, {"execute": "add_hostfwd", "arguments": {
            "proto": "tcp", "host_addr": "127.0.0.1", "host_port": port,
            "guest_addr": TAP_ADDRESS, "guest_port": GUEST_SSH_PORT}})
        if "return" in answer:  # slirp4netns bound the port (it answers an error when it cannot)
            return port
        last = answer.get("error", answer)
        time.sleep(0.05)
    raise SystemRequirement(f"slirp4netns (pid {helper.pid}) could not forward a port to the VM's SSH: {last}")


def connect(link: netns.Link, qemu: procs.ProcessId, instance_dir: Path) -> tuple[procs.ProcessId, int]:
    """Connect QEMU's namespace (its helper tied to ``link``, whose other end QEMU holds); the helper and
    the host's SSH port. On failure the helper is stopped and SystemRequirement raised."""
    (instance_dir / API_SOCKET).unlink(missing_ok=True)
    helper = netns.start(link, qemu.pid, instance_dir, host_local=False, api_socket=API_SOCKET)
    try:
        return helper, forward_ssh(instance_dir, helper)
    except BaseException:
        netns.stop(helper)
        raise
