"""An instance's own network: a network namespace of its own, connected by slirp4netns.

An instance on the network (``host``) does not share the host's network namespace: its sandbox
starts in a new one (see ``sandbox``) and slirp4netns, one per instance, connects it from the host
side: a tap device ``tap0`` (10.0.2.100/24, default route via 10.0.2.2), outbound connections made
as sockets of the host, and a DNS forwarder at 10.0.2.3 (to the host's resolvers), which the
instance's ``/etc/resolv.conf`` names. Nothing can connect into the instance from outside.

Unless the instance may reach host-local addresses (``NetworkPolicy.host_local``, from the
infrastructure configuration's ``kiln:HostLocalNetwork: allow``):

- slirp4netns runs with ``--disable-host-loopback``: 10.0.2.2 does not lead to the host's loopback
  (the instance's 127.0.0.1 is its own);
- ``INSTANCE_REFUSED_NETWORKS`` (169.254.0.0/16, with the metadata address 169.254.169.254) get
  ``prohibit`` routes in the namespace before any command runs (connect fails with EACCES);
- the instance's processes lack ``WITHHELD_CAPABILITIES``, so root inside can neither delete those
  routes (CAP_NET_ADMIN) nor hand-craft frames to the NAT past them (CAP_NET_RAW).

With host-local addresses allowed, 10.0.2.2 is the host's loopback and link-local is routed too.

The helper's life is tied to the sandbox's: its ``--exit-fd`` is the read end of a pipe whose write
end only the sandbox's processes hold, so it exits as soon as the sandbox is gone, also when the
kiln process that started it was killed. Its pid is recorded with the instance and it is stopped by
pid when the instance's processes are halted (stop, terminate, recovery). A VM instance's QEMU is
connected the same way (``kiln.runtime.vm_netns``), its SSH forward through the helper's API socket.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import time
from functools import lru_cache
from pathlib import Path

from kiln.documents.network import INSTANCE_REFUSED_NETWORKS
from kiln.errors import SystemRequirement
from kiln.runtime import procs
from kiln.runtime.sandbox import nsenter_path

TAP_DEVICE = "tap0"
DNS_FORWARDER = "10.0.2.3"
MTU = 65520  # slirp4netns's recommended maximum: fewer, larger packets through the NAT
READY_TIMEOUT = 10.0
WITHHELD_CAPABILITIES = ("NET_ADMIN", "NET_RAW")
LOG_NAME = "network.log"
RESOLV_CONF_NAME = "resolv.conf"

# Helpers this process started, kept so their exit can be reaped (no zombies while we live).
_children: dict[int, subprocess.Popen[bytes]] = {}


@lru_cache(maxsize=1)
def slirp4netns_path() -> str:
    found = shutil.which("slirp4netns")
    if not found:
        raise SystemRequirement("slirp4netns is not installed (instances on the network need it)",
                                hint="apt-get install slirp4netns")
    return found


@lru_cache(maxsize=1)
def ip_path() -> str:
    found = shutil.which("ip")
    if not found:
        raise SystemRequirement("iproute2 (ip) is not installed", hint="apt-get install iproute2")
    return found


def withheld_capabilities(network: str, host_local: bool) -> tuple[str, ...]:
    """Capabilities the processes of an instance with ``network`` lack on top of the sandbox's."""
    return WITHHELD_CAPABILITIES if network == "host" and not host_local else ()


def resolv_conf(instance_dir: Path) -> Path:
    """The resolver configuration bound into the instance: slirp4netns's DNS forwarder."""
    path = instance_dir / RESOLV_CONF_NAME
    path.write_text(f"# kiln: the instance's DNS forwarder (slirp4netns)\nnameserver {DNS_FORWARDER}\n")
    return path


class Link:
    """The pipe that ties a helper to one sandbox: ``sandbox_fd`` goes to the sandbox, the other
    end to the helper. Close it once both have started (or on failure)."""

    def __init__(self) -> None:
        self.helper_fd, self.sandbox_fd = os.pipe()

    def close(self) -> None:
        for fd in (self.helper_fd, self.sandbox_fd):
            if fd >= 0:
                os.close(fd)
        self.helper_fd = self.sandbox_fd = -1

    def sandbox_started(self) -> None:
        """Only the sandbox's processes hold the write end now."""
        os.close(self.sandbox_fd)
        self.sandbox_fd = -1


def slirp_argv(init_pid: int, *, host_local: bool, ready_fd: int, exit_fd: int,
               api_socket: str | None = None) -> list[str]:
    """``api_socket``: where slirp4netns listens for its API (port forwards; relative to the instance's
    directory, the helper's working directory, as a socket's path is limited to 107 bytes)."""
    return [
        slirp4netns_path(), "--configure", f"--mtu={MTU}",
        *([] if host_local else ["--disable-host-loopback"]),
        *([f"--api-socket={api_socket}"] if api_socket else []),
        "--enable-sandbox", "--enable-seccomp",
        f"--ready-fd={ready_fd}", f"--exit-fd={exit_fd}",
        str(init_pid), TAP_DEVICE,
    ]  # fmt: skip


def _log_tail(log: Path, limit: int = 400) -> str:
    try:
        return log.read_bytes()[-limit:].decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _wait_ready(ready_fd: int, helper: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(ready_fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("slirp4netns did not configure the network in time")
            if selector.select(min(remaining, 0.05)):
                if os.read(ready_fd, 16):
                    return
                raise ChildProcessError(f"slirp4netns exited with status {helper.wait()}")
            if helper.poll() is not None:
                raise ChildProcessError(f"slirp4netns exited with status {helper.returncode}")


def refuse_routes(init_pid: int) -> None:
    """``prohibit`` routes for the refused networks, set from the host inside the namespace (before
    slirp4netns connects it, so no packet leaves before they are there; again is harmless)."""
    commands = "".join(f"route replace prohibit {network}\n" for network in INSTANCE_REFUSED_NETWORKS)
    result = subprocess.run(
        [nsenter_path(), f"--net=/proc/{init_pid}/ns/net", "--", ip_path(), "-batch", "-"],
        input=commands.encode(), capture_output=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise ChildProcessError(f"ip route: {result.stderr.decode('utf-8', 'replace').strip()}")


def start(link: Link, init_pid: int, instance_dir: Path, *, host_local: bool,
          api_socket: str | None = None) -> procs.ProcessId:
    """Connect the network namespace of ``init_pid``; returns the helper, started and configured.
    ``api_socket``: see :func:`slirp_argv` (a VM's SSH forward: ``kiln.runtime.vm_netns``).

    On any failure the helper is stopped and SystemRequirement raised (the caller kills the sandbox).
    """
    reap_finished()
    log = instance_dir / LOG_NAME
    ready_r, ready_w = os.pipe()
    helper: subprocess.Popen[bytes] | None = None
    try:
        if not host_local:
            refuse_routes(init_pid)
        with open(log, "ab") as output:
            helper = subprocess.Popen(
                slirp_argv(init_pid, host_local=host_local, ready_fd=ready_w, exit_fd=link.helper_fd,
                           api_socket=api_socket),
                stdin=subprocess.DEVNULL, stdout=output, stderr=output, cwd=instance_dir,
                pass_fds=(ready_w, link.helper_fd), start_new_session=True,
            )  # fmt: skip
        os.close(ready_w)
        ready_w = -1
        _wait_ready(ready_r, helper, READY_TIMEOUT)
        identity = procs.identify(helper.pid)
        if identity is None:
            raise ChildProcessError(f"slirp4netns exited with status {helper.wait()}")
    except (OSError, TimeoutError, ChildProcessError) as error:
        _discard(helper)
        detail = _log_tail(log)
        raise SystemRequirement(
            f"the instance's network failed to start: {error}" + (f": {detail}" if detail else "")
        ) from None
    except BaseException:
        _discard(helper)
        raise
    finally:
        for fd in (ready_r, ready_w):
            if fd >= 0:
                os.close(fd)
    _children[helper.pid] = helper
    return identity


def _discard(helper: subprocess.Popen[bytes] | None) -> None:
    if helper is not None and helper.poll() is None:
        helper.kill()
    if helper is not None:
        helper.wait(timeout=10)


def stop(helper: procs.ProcessId | None, timeout: float = 10.0) -> None:
    """Stop the helper by its recorded pid and reap it. It exits by itself once its sandbox is gone, but
    only after noticing (milliseconds of every stop, spent waiting); it keeps nothing to save."""
    if helper is None:
        return
    procs.kill_and_wait(helper, timeout)
    child = _children.pop(helper.pid, None)
    if child is not None:
        child.wait(timeout=timeout)


def reap_finished() -> None:
    """Collect helpers of ours that ended meanwhile (their sandbox was stopped by another process)."""
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            _children.pop(pid, None)
