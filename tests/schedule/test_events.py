"""Event log and webhooks against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kiln.db.engine import session
from kiln.errors import InvalidInput, NotFound
from kiln.services.common import events

IMAGE_ARN = "arn:aws:imagebuilder:local:123456789012:image/web/1.0.0/1"
IMAGE = {
    "arn": IMAGE_ARN,
    "name": "web",
    "version": "1.0.0/1",
    "state": {"status": "AVAILABLE"},
    "outputResources": {"amis": [{"region": "local", "image": "ami-0123456789abcdef0"}]},
}


class Server:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server([])
    yield srv
    srv.close()


def test_delivery_is_signed_and_sns_shaped(server: Server) -> None:
    events.add_webhook(server.url, secret="s3cret")
    event_id = events.record_event("ImageStateChange", IMAGE_ARN, IMAGE)
    assert server.received == []  # recording never sends
    assert events.deliver_pending() == {"delivered": 1, "retrying": 0, "failed": 0}
    [(headers, body)] = server.received
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["x-kiln-signature"] == expected
    envelope = json.loads(body)
    assert envelope["Type"] == "Notification"
    assert envelope["Subject"] == "ImageStateChange"
    assert envelope["Timestamp"].endswith("Z")
    assert json.loads(envelope["Message"]) == IMAGE
    assert headers["x-amz-sns-message-id"] == envelope["MessageId"]
    assert events.deliveries(event_id)[0]["status"] == "DELIVERED"
    assert events.deliver_pending() == {"delivered": 0, "retrying": 0, "failed": 0}


def test_server_errors_are_retried_with_backoff() -> None:
    srv = Server([500, 500, 200])
    try:
        events.add_webhook(srv.url)
        events.record_event("ImageStateChange", IMAGE_ARN, {"state": {"status": "FAILED", "reason": "x"}})
        t0 = datetime.now(UTC)
        assert events.deliver_pending(now=t0)["retrying"] == 1
        assert events.deliver_pending(now=t0 + timedelta(seconds=10))["retrying"] == 0  # not due yet
        assert events.deliver_pending(now=t0 + timedelta(seconds=31))["retrying"] == 1
        assert events.deliver_pending(now=t0 + timedelta(seconds=31 + 59))["delivered"] == 0  # 60 s backoff
        assert events.deliver_pending(now=t0 + timedelta(seconds=31 + 61))["delivered"] == 1
        assert len(srv.received) == 3
        ids = {json.loads(body)["MessageId"] for _, body in srv.received}
        assert len(ids) == 1  # same message id on every attempt
        [row] = events.deliveries()
        assert (row["status"], row["attempts"]) == ("DELIVERED", 3)
        assert "x-kiln-signature" not in srv.received[0][0]
    finally:
        srv.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_webhook_keeps_the_event_and_gives_up_after_max_attempts() -> None:
    events.add_webhook(f"http://127.0.0.1:{_closed_port()}/down")
    event_id = events.record_event("ImageStateChange", IMAGE_ARN, IMAGE)
    now = datetime.now(UTC)
    assert events.deliver_pending(now=now, timeout=2) == {"delivered": 0, "retrying": 1, "failed": 0}
    [row] = events.deliveries(event_id)
    assert row["status"] == "PENDING" and row["attempts"] == 1
    assert "refused" in row["lastError"].lower() or "error" in row["lastError"].lower()
    assert row["nextAttemptAt"] == now + timedelta(seconds=30)
    assert [e["id"] for e in events.list_events()] == [event_id]
    for _ in range(events.MAX_ATTEMPTS - 1):
        now += timedelta(hours=2)
        events.deliver_pending(now=now, timeout=2)
    [row] = events.deliveries(event_id)
    assert (row["status"], row["attempts"]) == ("FAILED", events.MAX_ATTEMPTS)
    assert events.deliver_pending(now=now + timedelta(days=1), timeout=2)["retrying"] == 0


def test_record_event_joins_the_callers_transaction(server: Server) -> None:
    events.add_webhook(server.url)
    with pytest.raises(RuntimeError), session() as db:
        events.record_event("ImageStateChange", IMAGE_ARN, IMAGE, db)
        raise RuntimeError("the state change failed")
    assert events.list_events() == []
    assert events.deliveries() == []
    with session() as db:
        events.record_event("ImageStateChange", IMAGE_ARN, IMAGE, db)
    assert len(events.deliveries()) == 1


def test_since_filter_and_webhook_management() -> None:
    first = events.record_event("A", "arn:a", {})
    second = events.record_event("B", "arn:b", {"n": 1})
    assert [e["id"] for e in events.list_events(since_id=first)] == [second]
    with pytest.raises(InvalidInput):
        events.add_webhook("ftp://127.0.0.1/x")
    hook = events.add_webhook("http://127.0.0.1:1/x", secret="k")
    assert events.list_webhooks()[0]["signed"] is True
    events.remove_webhook(hook["id"])
    assert events.list_webhooks() == []
    with pytest.raises(NotFound):
        events.remove_webhook(hook["id"])


def test_cli_lists_events_and_manages_webhooks(kiln) -> None:
    events.record_event("ImageStateChange", IMAGE_ARN, IMAGE)

    listed = kiln("events", "--output", "json")
    assert listed.exit_code == 0, listed.stderr
    assert [e["arn"] for e in json.loads(listed.stdout)] == [IMAGE_ARN]
    added = kiln("events", "webhook", "add", "http://127.0.0.1:1/hook", "--secret", "x")
    assert added.stdout.strip() == "1"
    hooks = json.loads(kiln("events", "webhook", "list", "--output", "json").stdout)
    assert hooks[0]["url"].endswith("/hook")
    assert kiln("events", "webhook", "remove", "1").exit_code == 0
    missing = kiln("events", "webhook", "remove", "1")
    assert missing.exit_code != 0 and "does not exist" in missing.stderr


def test_follow_prints_new_events_as_they_arrive() -> None:
    first = events.record_event("ImageStateChange", IMAGE_ARN, {"state": {"status": "BUILDING"}})
    command = [sys.executable, "-m", "kiln", "events", "--follow", "--output", "json"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=os.environ.copy())
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["id"] == first
        second = events.record_event("ImageStateChange", IMAGE_ARN, {"state": {"status": "AVAILABLE"}})
        line = json.loads(proc.stdout.readline())
        assert (line["id"], line["detail"]["state"]["status"]) == (second, "AVAILABLE")
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_scheduler_tick_delivers_webhooks(kiln, server: Server) -> None:
    events.add_webhook(server.url, secret="k")
    events.record_event("ImageStateChange", IMAGE_ARN, IMAGE)
    done = kiln("scheduler", "--once")
    assert done.exit_code == 0, done.stderr
    assert len(server.received) == 1
    assert events.deliveries()[0]["status"] == "DELIVERED"
