"""Fixtures of the scanning tests: OSV records and installed packages built by hand, and a real HTTP
server on loopback that answers conditional requests (ETag / Last-Modified → 304) and logs them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kiln.model.packages import InstalledPackage


def osv(record_id: str, *affected: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schema_version": "1.6.0", "id": record_id, "modified": "2026-11-01T00:00:00Z",
            "published": "2026-10-01T00:00:00Z", "affected": list(affected), **extra}


def affected(ecosystem: str, name: str, *events: dict[str, str], versions: list[str] | None = None,
             **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}, **extra}
    if events:
        entry["ranges"] = [{"type": "ECOSYSTEM", "events": list(events)}]
    if versions is not None:
        entry["versions"] = versions
    return entry


def fixed(version: str) -> list[dict[str, str]]:
    return [{"introduced": "0"}, {"fixed": version}]


def package(name: str, version: str, ecosystem: str = "Debian:12", *, source: str | None = None,
            source_version: str | None = None, arch: str = "amd64") -> InstalledPackage:
    return InstalledPackage(name=name, version=version, architecture=arch, source_name=source or name,
                            source_version=source_version or version, ecosystem=ecosystem, purl="")


@dataclass
class Served:
    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    declared_length: int | None = None  # a Content-Length larger than the body: the connection breaks off


@dataclass
class LoopbackServer:
    url: str
    files: dict[str, Served] = field(default_factory=dict)
    log: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)  # (path, status, headers)

    def statuses(self, path: str) -> list[int]:
        return [status for logged, status, _ in self.log if logged == path]


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    """A threading HTTP server on 127.0.0.1 serving ``server.files[path]``, stopped after the test."""
    state = LoopbackServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served = state.files.get(self.path)
            headers = {key: value for key, value in self.headers.items()}
            if served is None:
                state.log.append((self.path, 404, headers))
                self.send_error(404)
                return
            unchanged = (served.etag is not None and self.headers.get("If-None-Match") == served.etag) or (
                served.etag is None and served.last_modified is not None
                and self.headers.get("If-Modified-Since") == served.last_modified)
            status = 304 if unchanged else 200
            state.log.append((self.path, status, headers))
            self.send_response(status)
            if served.etag:
                self.send_header("ETag", served.etag)
            if served.last_modified:
                self.send_header("Last-Modified", served.last_modified)
            if unchanged:
                self.end_headers()
                return
            self.send_header("Content-Length", str(served.declared_length or len(served.body)))
            self.end_headers()
            self.wfile.write(served.body)
            if served.declared_length:
                self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def http_date(seconds: float) -> str:
    return formatdate(seconds, usegmt=True)
