from __future__ import annotations

import http.server
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kiln.documents.engine import Engine
from kiln.documents.executor import Executor
from kiln.documents.host import HostExecutor
from kiln.documents.report import Execution, StepRecord
from kiln.documents.validate import load_document

RunDoc = Callable[..., Execution]


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
    hits: dict[str, int] = field(default_factory=dict)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def web() -> Iterator[WebServer]:
    state = WebServer()

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
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
