"""``exec --via serial`` without booting a VM: kiln's guest agent (``kiln.runtime.vm_agent``) run on
this host with a raw pseudo-terminal standing for its virtio-serial port, and a bridge standing for
QEMU (the port's host end served as the instance's ``exec.sock``). Output, stdin, exit codes and
timeouts come back as the command made them; with no agent behind the socket, exit 255."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.runtime import vm_agent, vm_serial


def _bridge(server: socket.socket, master: int | None, stop: threading.Event) -> None:
    """QEMU's part: one client at a time on the socket, its bytes to the port and back."""
    while not stop.is_set():
        ready, _, _ = select.select([server] + ([master] if master is not None else []), [], [], 0.1)
        if master is not None and master in ready:
            os.read(master, 65536)  # no client connected: dropped, as QEMU drops them
        if server not in ready:
            continue
        client, _ = server.accept()
        with client:
            while not stop.is_set():
                ready, _, _ = select.select([client] + ([master] if master is not None else []), [], [], 0.1)
                if client in ready:
                    data = client.recv(65536)
                    if not data:
                        break
                    if master is not None:
                        os.write(master, data)
                if master is not None and master in ready:
                    client.sendall(os.read(master, 65536))


@pytest.fixture
def guest(tmp_path: Path) -> Iterator[Path]:
    """A directory whose exec.sock reaches a running agent."""
    master, port = os.openpty()
    tty.setraw(port)
    agent = subprocess.Popen([sys.executable, "-I", "-S", vm_agent.__file__, os.ttyname(port)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / vm_serial.SOCKET))
    server.listen(1)
    stop = threading.Event()
    bridge = threading.Thread(target=_bridge, args=(server, master, stop), daemon=True)
    bridge.start()
    try:
        yield tmp_path
    finally:
        stop.set()
        bridge.join(timeout=10)
        agent.kill()
        agent.wait()
        server.close()
        os.close(master)
        os.close(port)


def test_output_exit_code_stdin_env_and_cwd_come_back(guest: Path) -> None:
    lines: list[str] = []
    result = vm_serial.exec_through(guest, ["sh", "-c", "echo out; echo err >&2; pwd; echo $GREETING; exit 3"],
                                    env={"GREETING": "hi there"}, cwd="/tmp", on_stdout=lines.append)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n/tmp\nhi there\n", "err\n")
    assert "".join(lines) == result.stdout  # streamed to the sink as it came
    piped = vm_serial.exec_through(guest, ["cat"], stdin=b"through the port\n" * 2000)
    assert piped.exit_code == 0 and piped.stdout == "through the port\n" * 2000
    missing = vm_serial.exec_through(guest, ["/no/such/program"])
    assert missing.exit_code == 127 and "/no/such/program" in missing.stderr
    killed = vm_serial.exec_through(guest, ["sh", "-c", "kill -9 $$"])
    assert killed.exit_code == 137


def test_a_timeout_kills_the_command_in_the_guest(guest: Path) -> None:
    result = vm_serial.exec_through(guest, ["sh", "-c", "echo started; sleep 60"], timeout=1)
    assert result.timed_out and result.exit_code == 124 and result.stdout == "started\n"
    assert vm_serial.exec_through(guest, ["true"]).exit_code == 0  # the channel is free again


def test_no_agent_behind_the_socket_is_exit_255(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / vm_serial.SOCKET))
    server.listen(1)
    stop = threading.Event()
    bridge = threading.Thread(target=_bridge, args=(server, None, stop), daemon=True)
    bridge.start()
    try:
        result = vm_serial.exec_through(tmp_path, ["true"], connect_timeout=1)
    finally:
        stop.set()
        bridge.join(timeout=10)
        server.close()
    assert result.exit_code == 255 and "did not answer" in result.stderr
