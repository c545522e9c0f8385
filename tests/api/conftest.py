from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER = textwrap.dedent("""
    import sys
    from kiln.services.startup import install
    install()
    from kiln.api.server import bind, serve
    sock = bind("127.0.0.1", 0)
    def ready():
        print(sock.getsockname()[1], flush=True)
    serve(sock, on_ready=ready)
""")


@dataclass
class Server:
    endpoint: str
    process: subprocess.Popen[str]
    key: dict[str, str]

    def client(self, service: str = "imagebuilder", *, key: dict[str, str] | None = None, region: str = "local"):
        import boto3

        key = key or self.key
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region,
                            aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])


@pytest.fixture
def server(kiln_home: Path) -> Iterator[Server]:
    """A real ``kiln`` API server on a free loopback port, with a key for the default account."""
    from kiln.home import DEFAULT_ACCOUNT
    from kiln.services.accounts.accounts import create_access_key

    key = create_access_key(DEFAULT_ACCOUNT)
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "KILN_HOME": str(kiln_home)})
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    assert port.isdigit(), process.stderr.read() if process.stderr else ""
    try:
        yield Server(f"http://127.0.0.1:{port}", process, key)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
