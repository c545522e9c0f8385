"""The long-lived bubblewrap process that holds an instance's namespaces.

``bwrap`` binds the mounted overlay as ``/`` with fresh ``/proc`` and ``/dev``, new pid,
ipc, uts and net namespaces, and keeps the capabilities of root (build steps install packages)
except those that reach the host (see ``DROPPED_CAPABILITIES``) and those the instance's network
withholds. Without a network bwrap makes the net namespace (loopback only); with one (``host``)
``unshare --net`` makes it before bwrap starts, so bwrap needs no CAP_NET_ADMIN, and
``kiln.runtime.netns`` connects it; the sandbox's processes hold ``SandboxSpec.hold_fds`` for life.
``/tmp`` is the root volume's own, as on an EC2 instance: files an executor writes there from the
host (AWSTOE scripts) are the files the instance sees.
bwrap's own pid 1 reaps orphans inside the instance.

The init command comes from the host, not from the image, so any image (busybox, Debian, a tree
without a shell) can run: the host's static busybox is bound read-only at ``/dev/.kiln/busybox``
(``/dev`` is a tmpfs of the sandbox, so nothing lands in the root volume) and runs
``sh -c 'echo ready >&N; exec N>&-; exec busybox sleep infinity'``. The ready line tells the launcher
that the root is set up; the sleeper holds the namespaces until stop or terminate, which kill the
pid namespace. The host pid of bwrap's pid 1 in the new namespace (``child-pid`` from
``--info-fd``) is what ``nsenter`` targets.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import IO

from kiln.errors import SystemRequirement
from kiln.runtime import cgroups, procs

INIT_BUSYBOX = "/dev/.kiln/busybox"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
READY_TIMEOUT = 15.0
# Root in an instance keeps every capability (package installs need them) except the few that
# reach past the namespaces into the shared host: kernel modules, the clock, kexec, raw I/O,
# the kernel log, wake alarms and the LSM policy.
DROPPED_CAPABILITIES = (
    "SYS_MODULE", "SYS_TIME", "SYS_BOOT", "SYS_RAWIO", "SYSLOG", "WAKE_ALARM", "MAC_ADMIN", "MAC_OVERRIDE",
)  # fmt: skip

# Children this process started, kept so their exit can be reaped (no zombies while we live).
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class SandboxSpec:
    root: Path  # the mounted overlay (the instance's merged dir)
    hostname: str
    network: str  # "none" or "host"
    console: Path
    cgroups: Sequence[Path] = ()
    resolv_conf: Path | None = None  # bound read-only at /etc/resolv.conf (with a network)
    withheld: Sequence[str] = ()  # capabilities dropped on top of DROPPED_CAPABILITIES
    hold_fds: Sequence[int] = ()  # inherited by the sandbox's processes (see kiln.runtime.netns)


@dataclass(frozen=True)
class Sandbox:
    init: procs.ProcessId  # bwrap's pid 1 inside the instance: holds the namespaces
    monitor: procs.ProcessId  # the outer bwrap process on the host


def _is_static_elf(path: Path) -> bool:
    """True when ``path`` is an ELF executable without a program interpreter (statically linked)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(64)
            if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit only
                return False
            (phoff,) = struct.unpack_from("<Q", header, 32)
            phentsize, phnum = struct.unpack_from("<HH", header, 54)
            handle.seek(phoff)
            table = handle.read(phentsize * phnum)
    except OSError:
        return False
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))  # PT_INTERP


@lru_cache(maxsize=1)
def host_busybox() -> Path:
    """The host's statically linked busybox (Debian ``busybox-static``): the instances' init."""
    for candidate in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if candidate and _is_static_elf(Path(candidate)):
            return Path(candidate).resolve()
    raise SystemRequirement("no statically linked busybox on the host", hint="apt-get install busybox-static")


@lru_cache(maxsize=1)
def setpriv_path() -> str:
    found = shutil.which("setpriv")
    if not found:
        raise SystemRequirement("util-linux setpriv is not installed", hint="apt-get install util-linux")
    return found


def without_host_capabilities(argv: Sequence[str], withheld: Sequence[str] = ()) -> list[str]:
    """``argv`` run with ``DROPPED_CAPABILITIES`` (and ``withheld``) out of its bounding set (for it
    and all it starts).

    bwrap 0.8 ignores ``--cap-drop`` after ``--cap-add ALL`` when run as root, so the bounding set
    is cut before bwrap (and before nsenter, for exec) with util-linux ``setpriv``.
    """
    bounding = ",".join(f"-{cap.lower()}" for cap in (*DROPPED_CAPABILITIES, *withheld))
    return [setpriv_path(), f"--bounding-set={bounding}", "--", *argv]


@lru_cache(maxsize=1)
def nsenter_path() -> str:
    found = shutil.which("nsenter")
    if not found:
        raise SystemRequirement("util-linux nsenter is not installed", hint="apt-get install util-linux")
    return found


@lru_cache(maxsize=1)
def unshare_path() -> str:
    found = shutil.which("unshare")
    if not found:
        raise SystemRequirement("util-linux unshare is not installed", hint="apt-get install util-linux")
    return found


@lru_cache(maxsize=1)
def bwrap_path() -> str:
    found = shutil.which("bwrap")
    if not found:
        raise SystemRequirement("bubblewrap (bwrap) is not installed", hint="apt-get install bubblewrap")
    return found


def _resolv_conf_args(spec: SandboxSpec) -> list[str]:
    """With a network, the instance's resolver config (``spec.resolv_conf``), bound read-only.

    Only over a regular file (or a missing one, which bwrap creates as an empty mount point): a
    symlink (e.g. into /run) would be followed inside the instance, so it is left alone.
    """
    if spec.network != "host" or spec.resolv_conf is None or not spec.resolv_conf.is_file():
        return []
    target = spec.root / "etc" / "resolv.conf"
    if target.is_symlink() or not target.parent.is_dir() or target.parent.is_symlink():
        return []
    return ["--ro-bind", str(spec.resolv_conf), "/etc/resolv.conf"]


def bwrap_argv(spec: SandboxSpec, *, info_fd: int, ready_fd: int) -> list[str]:
    argv = [
        bwrap_path(),
        "--bind", str(spec.root), "/",
        "--proc", "/proc",
        "--dev", "/dev",
        "--perms", "1777", "--tmpfs", "/dev/shm",
        "--ro-bind", str(host_busybox()), INIT_BUSYBOX,
        "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        *(["--unshare-net"] if spec.network == "none" else []),
        "--hostname", spec.hostname,
        "--cap-add", "ALL",
        "--chdir", "/",
        *_resolv_conf_args(spec),
        "--info-fd", str(info_fd),
        INIT_BUSYBOX, "sh", "-c",
        f"echo ready >&{ready_fd}; exec {ready_fd}>&-; exec {INIT_BUSYBOX} sleep infinity",
    ]  # fmt: skip
    return argv


def _read_until(fd: int, done: object, deadline: float, monitor: subprocess.Popen[bytes]) -> bytes:
    """Read ``fd`` until ``done(buffer)`` holds; fail if the sandbox exits or time runs out."""
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not done(buffer):  # type: ignore[operator]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the sandbox did not become ready")
            if selector.select(min(remaining, 0.05)):
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise ChildProcessError("the sandbox exited before it was ready")
                buffer += chunk
            elif monitor.poll() is not None:
                raise ChildProcessError(f"bwrap exited with status {monitor.returncode}")
    return buffer


def _parse_info(buffer: bytes) -> bool:
    try:
        json.loads(buffer)
    except ValueError:
        return False
    return True


def console_line(console: Path | IO[bytes], message: str) -> None:
    """A time-stamped line from kiln in the instance's console log."""
    line = f"{datetime.now(UTC).isoformat(timespec='milliseconds')} kiln: {message}\n".encode()
    if isinstance(console, Path):
        with open(console, "ab") as handle:
            handle.write(line)
    else:
        console.write(line)
        console.flush()


def _console_tail(console: Path, limit: int = 400) -> str:
    try:
        return console.read_bytes()[-limit:].decode("utf-8", "replace").strip()
    except OSError:
        return ""


def reap_finished() -> None:
    """Collect sandboxes of ours that ended meanwhile (e.g. terminated by another kiln process)."""
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            _children.pop(pid, None)


def spawn(spec: SandboxSpec) -> Sandbox:
    """Start the sandbox detached (own session, output to the console log) and wait until ready."""
    reap_finished()
    info_r, info_w = os.pipe()
    ready_r, ready_w = os.pipe()
    bwrap = bwrap_argv(spec, info_fd=info_w, ready_fd=ready_w)
    if spec.network != "none":
        bwrap = [unshare_path(), "--net", "--", *bwrap]  # exec's bwrap: the pid stays the monitor's
    bwrap = without_host_capabilities(bwrap, spec.withheld)
    argv = cgroups.join_argv(spec.cgroups, bwrap)
    env = {"PATH": DEFAULT_PATH, "HOME": "/root", "TERM": "dumb"}
    try:
        with open(spec.console, "ab") as console:
            console_line(console, f"starting {spec.hostname} (network {spec.network})")
            monitor = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=console,
                env=env,
                pass_fds=(info_w, ready_w, *spec.hold_fds),
                start_new_session=True,
            )
        os.close(info_w)
        os.close(ready_w)
        info_w = ready_w = -1
        deadline = time.monotonic() + READY_TIMEOUT
        try:
            info = json.loads(_read_until(info_r, _parse_info, deadline, monitor))
            _read_until(ready_r, lambda b: b"ready\n" in b, deadline, monitor)
        except (TimeoutError, ChildProcessError) as error:
            _discard(monitor)
            detail = _console_tail(spec.console)
            raise SystemRequirement(
                f"instance sandbox failed to start: {error}" + (f": {detail}" if detail else "")
            ) from None
    finally:
        for fd in (info_r, info_w, ready_r, ready_w):
            if fd >= 0:
                os.close(fd)
    init = procs.identify(int(info["child-pid"]))
    watcher = procs.identify(monitor.pid)
    if init is None or watcher is None:
        _discard(monitor)
        raise SystemRequirement("instance sandbox exited right after start: " + _console_tail(spec.console))
    _children[monitor.pid] = monitor
    return Sandbox(init=init, monitor=watcher)


def _discard(monitor: subprocess.Popen[bytes]) -> None:
    """Kill a half-started sandbox: its pid namespace dies with its pid 1, then bwrap exits."""
    if monitor.poll() is None:
        for child in procs.children(monitor.pid):
            procs.send(child, signal.SIGKILL)
        monitor.kill()
    monitor.wait(timeout=10)


def find_monitors(root: Path) -> list[procs.ProcessId]:
    """Sandboxes over ``root`` found by command line (also ones whose pids were never recorded)."""
    found = procs.with_argument("--bind", str(root))
    # bwrap's pid 1 inside the sandbox carries the same command line: keep the outer ones.
    pids = {p.pid for p in found}
    return [p for p in found if procs.parent_pid(p.pid) not in pids]


def kill(monitor: procs.ProcessId, timeout: float = 10.0) -> None:
    """Kill the sandbox whose outer bwrap is ``monitor`` (its namespace pid 1 first) and reap it."""
    if procs.is_alive(monitor.pid, monitor.start_time):
        for child in procs.children(monitor.pid):
            identity = procs.identify(child)
            if identity is not None:
                procs.kill_and_wait(identity, timeout)
        if not procs.wait_gone([monitor], 2.0):
            procs.kill_and_wait(monitor, timeout)
    reap(monitor.pid)


def reap(monitor_pid: int | None) -> None:
    """Collect the exit status of a sandbox this process started (after it has been killed)."""
    child = _children.pop(monitor_pid, None) if monitor_pid else None
    if child is not None:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
