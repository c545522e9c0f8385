"""A real HTTP proxy on loopback in front of moto: counts the EBS PutSnapshotBlock requests that reach
moto, and can answer the first N with a fault (503, or 400 ThrottlingException) or slow them down;
CompleteSnapshot requests can be faulted too."""

from __future__ import annotations

import http.client
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

PUT_BLOCK = re.compile(r"^/snapshots/[^/]+/blocks/\d+$")
COMPLETE = re.compile(r"^/snapshots/completion/[^/]+$")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class FaultProxy:
    def __init__(self, upstream: str, port: int = 0) -> None:
        self.upstream = urlsplit(upstream)
        self.lock = threading.Lock()
        self.faults: list[int] = []  # statuses to answer the next PutSnapshotBlock requests with
        self.complete_faults: list[int] = []  # and the next CompleteSnapshot requests
        self.delay = 0.0  # seconds each PutSnapshotBlock waits before it is forwarded
        self.puts: list[int] = []  # block indexes forwarded to moto
        self.waiting = 0  # PutSnapshotBlock requests inside their delay, not yet in ``puts``
        self.faulted = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "POST" and COMPLETE.match(self.path.split("?")[0]):
                    with proxy.lock:
                        fault = proxy.complete_faults.pop(0) if proxy.complete_faults else None
                    if fault is not None:
                        return self._fault(fault)
                if self.command == "PUT" and PUT_BLOCK.match(self.path.split("?")[0]):
                    with proxy.lock:
                        fault = proxy.faults.pop(0) if proxy.faults else None
                        proxy.faulted += fault is not None
                    if fault is not None:
                        return self._fault(fault)
                    with proxy.lock:
                        proxy.waiting += 1
                    try:
                        time.sleep(proxy.delay)
                        with proxy.lock:
                            proxy.puts.append(int(self.path.split("?")[0].rsplit("/", 1)[1]))
                    finally:
                        with proxy.lock:
                            proxy.waiting -= 1
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    answer = connection.getresponse()
                    data = answer.read()
                    self.send_response(answer.status)
                    for key, value in answer.getheaders():
                        if key.lower() not in HOP_BY_HOP | {"content-length"}:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    connection.close()

            def _fault(self, status: int) -> None:
                if status == 503:
                    data, kind = b'{"message": "Service Unavailable"}', "ServiceUnavailableException"
                else:
                    data, kind = b'{"message": "Rate exceeded"}', "ThrottlingException"
                self.send_response(status)
                self.send_header("x-amzn-ErrorType", kind)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        ThreadingHTTPServer.allow_reuse_address = True  # a proxy may come back on the port of a closed one
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until no PutSnapshotBlock is inside its delay: requests a killed client sent still land."""
        deadline = time.monotonic() + timeout
        while self.waiting:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.waiting} PutSnapshotBlock requests still waiting")
            time.sleep(0.05)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
