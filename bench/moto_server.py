"""moto's server on a free loopback port, for the benches that compare kiln with it or publish to it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request


def start_moto(timeout: float = 60.0) -> tuple[subprocess.Popen[bytes], str]:
    """(process, endpoint) of a running moto server; the caller stops the process by its pid."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                return process, endpoint
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
