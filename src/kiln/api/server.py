"""Running the API: uvicorn on a socket bound here (so ``--port 0`` can say which port it got), with the
pipeline scheduler in a background thread, so one process is the whole service. SIGTERM (or SIGINT)
stops taking connections, answers the requests in flight, stops the scheduler (running builds finish)
and returns. uvicorn's "auto" HTTP stack is httptools on uvloop when they are installed (kiln depends on
both; a request then costs the server about half the CPU of pure-Python h11 on asyncio's loop)."""

from __future__ import annotations

import gc
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from logging.handlers import QueueHandler, QueueListener
from typing import Any

ACCESS_FORMAT = "%(asctime)s %(message)s"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def url(sock: socket.socket, *, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    return f"{'https' if tls else 'http'}://{f'[{host}]' if ':' in host else host}:{port}"


def _access_log() -> Callable[[], None]:
    """One line per request on stderr: method, service:operation, account, status, milliseconds. A thread
    of its own writes them: a write from the event loop
    stalled every connection until the loop got the interpreter back. Returns what stops it (the lines
    logged so far written). The access lines skip the logging machinery (a record made, formatted and
    copied per request cost more than the rest of the loop's work on a cheap read): the loop queues the
    line and its time, and the thread writes both as the "kiln.api" logger's records (errors) are."""
    from kiln.api import app

    logger = logging.getLogger("kiln.api")
    logger.setLevel(logging.INFO)
    if logger.handlers:
        return lambda: None
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(ACCESS_FORMAT)
    handler.setFormatter(formatter)
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = _Lines(lines, handler)
    listener.start()
    feeding = QueueHandler(lines)
    logger.addHandler(feeding)
    logger.propagate = False
    app.access = lambda line: lines.put_nowait((time.time(), line))  # type: ignore[arg-type]

    def stop() -> None:
        app.access = app._log_access
        logger.removeHandler(feeding)
        listener.stop()

    return stop


class _Lines(QueueListener):
    """The access log's listener: log records, and access lines as (time, line)."""

    def prepare(self, record: Any) -> Any:
        if isinstance(record, tuple):
            created, line = record
            made = logging.makeLogRecord({"name": "kiln.api", "msg": line, "levelno": logging.INFO,
                                          "levelname": "INFO"})
            made.created, made.msecs = created, int(created * 1000) % 1000
            return made
        return record


def _scheduler(stop: threading.Event, say: Callable[[str], None]) -> threading.Thread:
    from kiln.services import scheduling

    def run() -> None:
        try:
            scheduling.run_until(stop, say=say)
        except Exception:
            logging.getLogger("kiln.api").exception("the scheduler stopped")

    thread = threading.Thread(target=run, name="kiln-scheduler", daemon=True)
    thread.start()
    return thread


def serve(sock: socket.socket, *, tls_cert: str | None = None, tls_key: str | None = None,
          on_ready: Callable[[], None] | None = None, scheduler: bool = True,
          say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> None:
    import uvicorn

    from kiln.api.app import app, warm

    stop_log = _access_log()
    if os.environ.get("KILN_API_PRELOAD", "1") != "0":  # 0: only to measure what preloading saves
        warm()
    # What start-up loaded (botocore's models, the AMIs held in memory) lives as long as the process: left
    # out of the collector's full passes, which otherwise walked all of it, holding every request up.
    gc.freeze()
    config = uvicorn.Config(app, lifespan="off", access_log=False, log_level="warning",
                            ssl_certfile=tls_cert, ssl_keyfile=tls_key, timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        # Ours until uvicorn installs its own, and again after: uvicorn re-raises the signal it caught
        # once it has drained, and that must not kill the process before the scheduler has stopped.
        stop.set()
        server.should_exit = True

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    background = _scheduler(stop, say) if scheduler else None
    try:
        if on_ready is not None:
            on_ready()
        if not stop.is_set():
            server.run(sockets=[sock])
    finally:
        stop.set()
        if background is not None:
            background.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sock.close()
        stop_log()
