"""``kiln instance exec --via serial``: a command run in a VM guest without SSH or a login, through
kiln's agent (``kiln.runtime.vm_agent``, started in the guest by cloud-init) on a virtio-serial port
whose host end is the instance's ``exec.sock`` (QEMU the server, one client at a time: execs take
turns, under a lock file). The command's output and exit code come back as the agent sends them."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kiln.documents.executor import OutputSink, ProcessResult
from kiln.documents.process_output import OutputCapture
from kiln.ec2_errors import IncorrectInstanceState
from kiln.runtime import procs, records
from kiln.runtime.records import Instance

PORT_NAME = "org.kiln.exec.0"
SOCKET = "exec.sock"
CONNECT_SECONDS = 10.0
UNREACHABLE = 255  # as ssh says it: the guest could not be reached (no agent answering yet)
LINGER_SECONDS = 30.0  # past the command's timeout, for the agent to kill it and say so


def running(instance_id: str) -> Instance:
    instance = records.get(instance_id)
    guest = instance.init
    if instance.state != records.RUNNING or guest is None or not procs.is_alive(guest.pid, guest.start_time):
        raise IncorrectInstanceState(f"instance {instance_id} is not running (state {instance.state})",
                                     hint=f"kiln instance start {instance_id}")
    return instance


def _connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    directory = os.open(path.parent, os.O_PATH)  # a socket's path may not be longer than 107 bytes
    try:
        sock.connect(f"/proc/self/fd/{directory}/{path.name}")
    except OSError:
        sock.close()
        raise
    finally:
        os.close(directory)
    return sock


class _Lines:
    """JSON lines from the agent, those of other requests (an earlier, abandoned exec) skipped."""

    def __init__(self, sock: socket.socket, request_id: str) -> None:
        self.sock, self.request_id, self.buffered = sock, request_id, b""

    def next(self, deadline: float) -> dict[str, Any] | None:
        while True:
            while b"\n" in self.buffered:
                line, self.buffered = self.buffered.split(b"\n", 1)
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict) and message.get("id") == self.request_id:
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                return None
            self.buffered += chunk


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def agent_answers(instance: Instance, timeout: float = CONNECT_SECONDS) -> bool:
    """Whether the guest's agent answers a ping within ``timeout`` seconds."""
    try:
        with _session(instance.dir) as sock:
            return _ping(sock, timeout)
    except OSError:
        return False


def _ping(sock: socket.socket, timeout: float) -> bool:
    ping = secrets.token_hex(8)
    _send(sock, {"id": ping, "ping": True})
    return _Lines(sock, ping).next(time.monotonic() + timeout) is not None


class _session:
    """The exec socket in ``directory``, connected, held under the instance's exec lock."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __enter__(self) -> socket.socket:
        self.lock = open(self.directory / "exec.lock", "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            self.sock = _connect(self.directory / SOCKET)
        except BaseException:
            self.lock.close()
            raise
        return self.sock

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        self.lock.close()


def exec_serial(
    instance_id: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    stdin: bytes | None = None,
    on_stdout: OutputSink | None = None,
    on_stderr: OutputSink | None = None,
    connect_timeout: float = CONNECT_SECONDS,
) -> ProcessResult:
    """Run ``argv`` in the running VM instance through its exec agent; the exit code is the command's
    (255: no agent answered within ``connect_timeout``, e.g. the guest still booting)."""
    if not argv:
        raise ValueError("empty command")
    instance = running(instance_id)
    if not (instance.dir / SOCKET).exists():
        raise IncorrectInstanceState(f"instance {instance_id} has no serial exec channel (booted by an older kiln)",
                                     hint=f"stop and start {instance_id}, or use --via ssh")
    return exec_through(instance.dir, argv, env=env, cwd=cwd, timeout=timeout, stdin=stdin, on_stdout=on_stdout,
                        on_stderr=on_stderr, connect_timeout=connect_timeout, label=instance_id)


def exec_through(
    directory: Path,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    stdin: bytes | None = None,
    on_stdout: OutputSink | None = None,
    on_stderr: OutputSink | None = None,
    connect_timeout: float = CONNECT_SECONDS,
    label: str = "the guest",
) -> ProcessResult:
    """:func:`exec_serial` through the exec socket in ``directory``."""
    out = OutputCapture(on_stdout, line_endings=True)
    err = OutputCapture(on_stderr, line_endings=True)
    try:
        with _session(directory) as sock:
            if not _ping(sock, connect_timeout):
                return ProcessResult(UNREACHABLE, "", f"kiln's exec agent in {label} did not answer "
                                     f"within {connect_timeout:g} s (still booting?)\n")
            request_id = secrets.token_hex(8)
            _send(sock, {"id": request_id, "argv": list(argv), "env": dict(env or {}), "cwd": cwd,
                         "timeout": timeout,
                         "stdin": base64.b64encode(stdin).decode() if stdin is not None else None})
            lines = _Lines(sock, request_id)
            deadline = time.monotonic() + (timeout + LINGER_SECONDS if timeout is not None else 10 * 365 * 86400)
            while (message := lines.next(deadline)) is not None:
                if "exit" in message:
                    out.feed(b"", final=True)
                    err.feed(b"", final=True)
                    return ProcessResult(int(message["exit"]), out.text(), err.text(),
                                         timed_out=bool(message.get("timed_out")))
                (out if message.get("stream") == "stdout" else err).feed(base64.b64decode(message.get("data", "")))
    except OSError as error:
        return ProcessResult(UNREACHABLE, out.text(), f"the exec channel of {label} failed: {error}\n")
    return ProcessResult(UNREACHABLE, out.text(), err.text() + f"the exec channel of {label} closed before "
                         "the command's exit code came\n")
