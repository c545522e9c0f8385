"""A VM instance's metadata endpoint, IMDSv2-compatible: what the guest reaches at
``http://169.254.169.254/latest/…``.

The rules are EC2's: ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds`` (1 to 21600)
returns a session token (400 without a valid TTL, 403 when the request went through a proxy, i.e.
carries ``X-Forwarded-For``); a ``GET`` presenting ``X-aws-ec2-metadata-token`` must present a token
this endpoint issued and that has not expired (401 otherwise); a ``GET`` without a token is answered
only when the instance's ``HttpTokens`` is ``optional`` (IMDSv1), else 401.

No process runs per instance: QEMU's user network runs ``python -I -S vm_metadata.py CONFIG`` for each
guest connection to 169.254.169.254:80 (``guestfwd=…-cmd:``), the connection a socket on its stdin,
stdout and stderr, and this answers it. Tokens outlive the connection that asked for one without any
shared state: a token carries its expiry and an HMAC of it under the instance's secret (``CONFIG``'s
``token_secret``, a fresh one every boot). Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

TOKEN_HEADER = "x-aws-ec2-metadata-token"
TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds"
MAX_TTL = 21600
HTTP_TOKENS = ("optional", "required")


@dataclass
class Answer:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Metadata:
    """What the endpoint knows about its instance (the ``CONFIG`` file's JSON)."""

    ami_id: str
    instance_id: str
    instance_type: str
    local_ipv4: str
    hostname: str
    http_tokens: str = "optional"
    public_keys: dict[str, str] = field(default_factory=dict)  # key name → OpenSSH public key
    user_data: str | None = None
    token_secret: str = ""  # hex; the key of the tokens' HMAC

    @classmethod
    def load(cls, path: Path) -> Metadata:
        return cls(**json.loads(path.read_text()))

    def tree(self) -> dict[str, Any]:
        keys = {f"{n}={name}": {"openssh-key": key} for n, (name, key) in enumerate(sorted(self.public_keys.items()))}
        tree: dict[str, Any] = {
            "ami-id": self.ami_id,
            "hostname": self.hostname,
            "instance-id": self.instance_id,
            "instance-type": self.instance_type,
            "local-hostname": self.hostname,
            "local-ipv4": self.local_ipv4,
            "placement": {"availability-zone": "local"},
        }
        if keys:
            tree["public-keys"] = keys
        return tree


class Tokens:
    """Session tokens: 16 random bytes, the expiry (``clock`` seconds) and an HMAC-SHA256 of both under
    ``secret``, so any process holding the secret checks any token, and nothing is remembered."""

    def __init__(self, clock: Any = time.time, secret: bytes | None = None) -> None:
        self._clock = clock
        self._secret = secret or secrets.token_bytes(32)

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()

    def issue(self, ttl: int) -> str:
        body = secrets.token_bytes(16) + struct.pack(">d", self._clock() + ttl)
        return base64.urlsafe_b64encode(body + self._mac(body)).decode().rstrip("=")

    def valid(self, token: str) -> bool:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            return False
        body, mac = raw[:24], raw[24:]
        if len(raw) != 56 or not hmac.compare_digest(mac, self._mac(body)):
            return False
        return bool(struct.unpack(">d", body[16:])[0] > self._clock())


def _lookup(tree: dict[str, Any], path: str) -> str | None:
    """The value at ``path`` (``a/b/c``), a directory as its listing (subdirectories end in ``/``)."""
    node: Any = tree
    for part in [p for p in path.split("/") if p]:
        if not isinstance(node, dict):
            return None
        # public-keys/0 names the entry listed as "0=name"
        match = next((key for key in node if key == part or key.split("=", 1)[0] == part), None)
        if match is None:
            return None
        node = node[match]
    if isinstance(node, dict):
        return "\n".join(key + ("/" if isinstance(value, dict) and "=" not in key else "")
                         for key, value in node.items())
    return str(node)


def answer(metadata: Metadata, tokens: Tokens, method: str, path: str, headers: dict[str, str]) -> Answer:
    """The endpoint's answer to one request (``headers`` with lower-case names)."""
    if method == "PUT":
        if path != "/latest/api/token":
            return Answer(403, "Forbidden")
        if "x-forwarded-for" in headers:
            return Answer(403, "Forbidden")
        ttl = headers.get(TTL_HEADER, "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL:
            return Answer(400, "Bad Request")
        return Answer(200, tokens.issue(int(ttl)), {TTL_HEADER: ttl})
    if method not in ("GET", "HEAD"):
        return Answer(405, "Method Not Allowed", {"Allow": "GET, HEAD, PUT"})
    token = headers.get(TOKEN_HEADER)
    if token is not None and not tokens.valid(token):
        return Answer(401, "Unauthorized")
    if token is None and metadata.http_tokens == "required":
        return Answer(401, "Unauthorized")
    if path in ("/latest", "/latest/"):
        return Answer(200, "dynamic\nmeta-data\nuser-data" if metadata.user_data is not None else "dynamic\nmeta-data")
    if path == "/latest/user-data":
        return Answer(200, metadata.user_data) if metadata.user_data is not None else Answer(404, "Not Found")
    if path.startswith("/latest/meta-data"):
        value = _lookup(metadata.tree(), path.removeprefix("/latest/meta-data"))
        if value is not None:
            return Answer(200, value)
    return Answer(404, "Not Found")


def serve_connection(config: Path, connection: socket.socket) -> None:
    """Answer the HTTP requests of one guest connection (until the guest or HTTP/1.0 closes it)."""
    metadata = Metadata.load(config)
    tokens = Tokens(secret=bytes.fromhex(metadata.token_secret) if metadata.token_secret else None)
    log = config.with_name("metadata.log")

    class Handler(BaseHTTPRequestHandler):
        server_version = "EC2ws"
        sys_version = ""
        timeout = 30

        def _reply(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            result = answer(metadata, tokens, self.command, self.path.split("?", 1)[0], headers)
            body = result.body.encode()
            self.send_response(result.status)
            for name, value in {"Content-Type": "text/plain", **result.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _reply

        log_message = file_log(log)

    Handler(connection, ("guest", 0), None)  # type: ignore[arg-type]


def file_log(log: Path) -> Callable[..., None]:
    """A handler's ``log_message`` that appends to ``log``: not stderr, which is the guest's connection
    too (a ``guestfwd`` ``cmd:`` process talks to the guest on its stdin and stdout)."""

    def log_message(handler: BaseHTTPRequestHandler, format: str, *args: Any) -> None:
        with open(log, "a") as out:
            out.write(f"{handler.command} {handler.path} {args[1] if len(args) > 1 else ''}\n")

    return log_message


def serve_stdin(serve: Callable[[Path, socket.socket], None], config: Path) -> None:
    """Serve the guest connection QEMU gave this process as its stdin with ``serve(config, connection)``."""
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (for the process's life: a traceback must not reach the guest)
    with socket.socket(fileno=os.dup(0)) as connection:
        serve(config, connection)


def main(config: Path) -> None:
    serve_stdin(serve_connection, config)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
