"""Running the API: uvicorn on a socket bound here (so ``--port 0`` can say which port it got), stopped
by SIGTERM or SIGINT after the requests in flight are answered."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def serve(sock: socket.socket, *, tls_cert: str | None = None, tls_key: str | None = None,
          on_ready: Callable[[], None] | None = None) -> None:
    import uvicorn

    from kiln.api.app import app

    logging.getLogger("kiln.api").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(message)s")
    config = uvicorn.Config(app, lifespan="off", access_log=False, log_level="warning",
                            ssl_certfile=tls_cert, ssl_keyfile=tls_key, timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready()
    server.run(sockets=[sock])
