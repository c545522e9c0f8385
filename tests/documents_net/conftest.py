from __future__ import annotations

import http.server
import ssl
import subprocess
import textwrap
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kiln.documents.engine import Engine
from kiln.documents.executor import Executor, OsInfo, ProcessResult, os_info_from_release
from kiln.documents.host import HostExecutor
from kiln.documents.report import Execution, StepRecord
from kiln.documents.validate import load_document
from kiln.paths import resolve_in_root

RunDoc = Callable[..., Execution]


class RootedExecutor(HostExecutor):
    """A stand-in target: host processes, but target paths live under ``root`` (as in an instance)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def host_path(self, path: str) -> Path:
        return resolve_in_root(self.root, path)

    def run(self, argv: Sequence[str], **options: object) -> ProcessResult:
        program = str(self.host_path(argv[0])) if argv[0].startswith("/") else argv[0]
        return super().run([program, *argv[1:]], **options)  # type: ignore[arg-type]

    def os_info(self) -> OsInfo:
        return os_info_from_release(self.host_path("/etc/os-release").read_text())


def steps(execution: Execution) -> dict[str, StepRecord]:
    return {s.name: s for s in execution.steps()}


@pytest.fixture
def run_doc(tmp_path: Path) -> RunDoc:
    """Validate and run one YAML document with the real engine (host executor unless given)."""

    def run(text: str, executor: Executor | None = None, **options: object) -> Execution:
        path = tmp_path / "doc.yaml"
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        doc = load_document(path)
        return Engine(executor or HostExecutor()).run([doc], **options)  # type: ignore[arg-type]

    return run


@dataclass
class WebServer:
    """A real HTTP server on 127.0.0.1: ``files`` maps URL paths to bodies; ``flaky`` counts 503s."""

    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    flaky: dict[str, int] = field(default_factory=dict)
    truncated: set[str] = field(default_factory=set)
    hits: dict[str, int] = field(default_factory=dict)
    port: int = 0
    scheme: str = "http"

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"


def _serve(state: WebServer, tls: ssl.SSLContext | None = None) -> Iterator[WebServer]:

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path
            state.hits[path] = state.hits.get(path, 0) + 1
            if state.flaky.get(path, 0) > 0:
                state.flaky[path] -= 1
                self.send_error(503, "try later")
                return
            if path in state.redirects:
                self.send_response(302)
                self.send_header("Location", state.redirects[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = state.files.get(path)
            if body is None:
                self.send_error(404, "no such file")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) * (2 if path in state.truncated else 1)))
            self.end_headers()
            self.wfile.write(body)
            if path in state.truncated:
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        state.scheme = "https"
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def web() -> Iterator[WebServer]:
    """A real HTTP server on 127.0.0.1, stopped after the test."""
    yield from _serve(WebServer())


@pytest.fixture
def tls_web(tmp_path: Path) -> Iterator[WebServer]:
    """The same over HTTPS with a fresh self-signed certificate (made by the openssl tool)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    yield from _serve(WebServer(), context)
