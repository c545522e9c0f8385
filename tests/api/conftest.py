"""kiln's API on loopback, and clients for it: ``server`` serves kiln's API app with uvicorn in this
process (the wire protocols, signing and the services behind them); ``serve_process`` and ``start`` run a
real ``kiln serve --port 0`` (the CLI entry point, in its own process) for what only a process shows:
the first-start key, the access log, TLS, SIGTERM (tests/api/test_serve.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

LISTENING = "kiln serve listening on "
GLOBAL_REGION = {"organizations": "us-east-1", "sts": "us-east-1"}


@dataclass
class Server:
    """Where kiln's API answers, and the access key requests are signed with."""

    endpoint: str
    key: dict[str, str]

    def client(self, service: str = "imagebuilder", *, key: dict[str, str] | None = None,
               region: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        key = key or self.key
        region = region or GLOBAL_REGION.get(service, "local")
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region,
                            aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                            config=Config(retries={"max_attempts": 1}))


@dataclass
class ServeProcess(Server):
    """A ``kiln serve`` process."""

    process: subprocess.Popen[str]
    log: Path

    def stderr(self) -> str:
        return self.log.read_text()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as systemd stops the service; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def start(home: Path, log: Path, *args: str, key: dict[str, str] | None = None) -> ServeProcess:
    """``kiln serve --port 0 ARGS`` with ``KILN_HOME=home``; stderr (access log, first-start key) to ``log``."""
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "kiln", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=sink, text=True, env={**os.environ, "KILN_HOME": str(home)},
        )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith(LISTENING):
        process.kill()
        process.wait()
        pytest.fail(f"kiln serve did not start: {line!r}\n{log.read_text()}")
    return ServeProcess(line.removeprefix(LISTENING), key or {}, process, log)


@pytest.fixture
def serve_process(kiln_home: Path, tmp_path: Path) -> Iterator[ServeProcess]:
    """A real ``kiln serve`` process on a free loopback port, with a key for the default account; it must
    exit 0 on SIGTERM."""
    from kiln.home import DEFAULT_ACCOUNT
    from kiln.services.accounts.accounts import create_access_key

    key = create_access_key(DEFAULT_ACCOUNT)
    running = start(kiln_home, tmp_path / "serve.log", key=key)
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, running.stderr()


@pytest.fixture
def server(kiln_home: Path) -> Iterator[Server]:
    """kiln's API app (what ``kiln serve`` serves) under uvicorn in a thread of this process, on a free
    loopback port, with a key for the default account; stopped after the test."""
    import uvicorn

    from kiln.api.app import app
    from kiln.api.server import bind, url
    from kiln.home import DEFAULT_ACCOUNT
    from kiln.services.accounts.accounts import create_access_key

    key = create_access_key(DEFAULT_ACCOUNT)
    sock = bind("127.0.0.1", 0)
    running = uvicorn.Server(uvicorn.Config(app, lifespan="off", access_log=False, log_level="warning"))
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, name="kiln-api", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not running.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
            time.sleep(0.01)
        yield Server(url(sock), key)
    finally:
        running.should_exit = True
        thread.join(timeout=30)
        sock.close()
    assert not thread.is_alive(), "the API server did not stop"


def raw(server: Server, method: str, path: str = "/", body: bytes = b"", headers: dict[str, str] | None = None,
        *, service: str | None = None, key: dict[str, str] | None = None, region: str = "local",
        when: Any = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request as sent, SigV4-signed for ``service`` by botocore's signer (unsigned when None);
    ``when`` fakes the signing time. Answers (status, headers, body), errors included."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=server.endpoint + path, data=body, headers=dict(headers or {}))
    if service is not None:
        key = key or server.key
        signer = SigV4Auth(Credentials(key["AccessKeyId"], key["SecretAccessKey"]), service, region)
        if when is None:
            signer.add_auth(request)
        else:
            from unittest import mock

            with mock.patch("botocore.auth.get_current_datetime", return_value=when):
                signer.add_auth(request)
    prepared = request.prepare()
    sent = urllib.request.Request(prepared.url, data=prepared.body or None, method=method,
                                  headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()
