"""QEMU's machine protocol (QMP) over the VM's unix socket: just enough to ask the guest to power off
(``system_powerdown``, the ACPI power button) as EC2's stop does before it pulls the plug, and to
reset it (``system_reset``, the reset button: a reboot that keeps the QEMU process)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

QMP_TIMEOUT = 5.0


def _read(stream: Any) -> dict[str, Any]:
    """The next reply or greeting (events are skipped)."""
    while True:
        line = stream.readline()
        if not line:
            raise ConnectionError("QMP socket closed")
        message = json.loads(line)
        if "event" not in message:
            return dict(message)


def command(socket_path: Path, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one QMP command and return its reply (``{"return": …}`` or ``{"error": …}``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(QMP_TIMEOUT)
        # through the directory's descriptor: a socket's path may not be longer than 107 bytes
        directory = os.open(socket_path.parent, os.O_PATH)
        try:
            sock.connect(f"/proc/self/fd/{directory}/{socket_path.name}")
        finally:
            os.close(directory)
        stream = sock.makefile("rwb")
        _read(stream)  # greeting
        wanted = {"execute": name, **({"arguments": arguments} if arguments else {})}
        for request in ({"execute": "qmp_capabilities"}, wanted):
            stream.write(json.dumps(request).encode() + b"\n")
            stream.flush()
            reply = _read(stream)
        return reply


def powerdown(socket_path: Path) -> bool:
    """Press the guest's power button; False when QEMU could not be asked (already gone)."""
    try:
        return "return" in command(socket_path, "system_powerdown")
    except (OSError, ValueError):
        return False


def reset(socket_path: Path) -> bool:
    """Press the guest's reset button; False when QEMU could not be asked (already gone)."""
    try:
        return "return" in command(socket_path, "system_reset")
    except (OSError, ValueError):
        return False
