"""A VM instance's S3 relay: how the S3Download and S3Upload steps kiln's runner runs in a guest reach
S3, the credentials and the network policy staying on the host (as EC2 keeps them behind the
instance profile).

No process runs per instance: QEMU's user network runs ``python -I vm_s3_relay.py CONFIG`` for each
guest connection to 169.254.169.254:8773 (``guestfwd=…-cmd:``), the connection a socket on its stdin and
stdout, and this answers it in the protocol :mod:`kiln.documents.s3_relay_client` describes, with the
boto3 client :func:`kiln.documents.actions.s3.client` makes for the build's policy: ``subnetId none``
refused, host-local endpoints refused unless allowed, the instance profile's mapped AWS profile or
unsigned requests, never the host's own identity. ``CONFIG`` (``s3-relay.json`` beside the metadata
endpoint's) holds that policy and the S3 endpoint settings of kiln's environment at launch; an instance
launched without a policy (``kiln instance run --vm``) gets a relay that refuses, saying so.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

# Nothing of kiln at the top: run as a script, this puts its own tree on sys.path first (see the end).
CONFIG_NAME = "s3-relay.json"
# what boto3 finds the S3 endpoint, region and a mapped profile's credentials by (never credentials)
ENVIRONMENT = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE", "AWS_CONFIG_FILE",
               "AWS_SHARED_CREDENTIALS_FILE", "AWS_DEFAULT_REGION", "AWS_REGION")
NO_POLICY = ("this VM was not launched by a build, and only a build's infrastructure configuration says how its "
             "instances may reach S3")
BLOCK = 1 << 20
IDLE_SECONDS = 3600  # a guest's step keeps its connection between objects


def write_config(path: Path, policy: Any | None) -> None:
    """The relay's CONFIG for an instance: ``policy`` (a NetworkPolicy, None: refuse) and the S3
    settings of this process's environment."""
    from kiln.files import write_atomic

    config = {
        "policy": None if policy is None else {"reachable": policy.reachable, "host_local": policy.host_local,
                                               "aws_profile": policy.aws_profile},
        "environment": {name: os.environ[name] for name in ENVIRONMENT if name in os.environ},
    }
    write_atomic(path, json.dumps(config), mode=0o600)


class _Upload:
    """The request's body, exactly ``length`` bytes (a guest that stops early fails the upload)."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        wanted = self.remaining if size is None or size < 0 else min(size, self.remaining)
        if wanted == 0:
            return b""
        data = self._stream.read(wanted)
        if not data:
            raise OSError(f"the guest stopped sending with {self.remaining} bytes to go")
        self.remaining -= len(data)
        return bytes(data)

    def drain(self) -> None:
        try:
            while self.remaining:
                self.read(BLOCK)
        except OSError:
            pass


def _status(error: Exception) -> int:
    status = getattr(error, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if isinstance(status, int) and 400 <= status < 600 else 502


def serve_connection(config_path: Path, connection: socket.socket) -> None:
    """Answer the requests of one guest connection (until the guest closes it)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from kiln.documents.actions import s3 as actions
    from kiln.documents.network import NetworkPolicy, NetworkRefused
    from kiln.runtime.vm_metadata import file_log

    config = json.loads(config_path.read_text())
    for name in ENVIRONMENT:  # kiln's settings at launch, not those QEMU happened to inherit
        os.environ.pop(name, None)
    os.environ.update(config.get("environment") or {})
    policy = NetworkPolicy(**config["policy"]) if config.get("policy") else None
    log = config_path.with_name("s3-relay.log")
    clients: list[Any] = []

    def s3() -> Any:
        if policy is None:
            raise NetworkRefused(NO_POLICY)
        if not clients:
            clients.append(actions.client(policy))
        return clients[0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "kiln-s3-relay"
        sys_version = ""
        timeout = IDLE_SECONDS

        def _json(self, status: int, answer: dict[str, Any]) -> None:
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _failed(self, error: Exception) -> None:
            if isinstance(error, NetworkRefused):
                self._json(403, {"refused": str(error)})
            elif isinstance(error, (ClientError, BotoCoreError, OSError)):
                self._json(_status(error), {"detail": actions.detail(error)})
            else:
                self._json(500, {"detail": f"{type(error).__name__}: {error}"})

        def _query(self) -> tuple[str, dict[str, str], dict[str, str]]:
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
            owner = {"ExpectedBucketOwner": query["owner"]} if query.get("owner") else {}
            return parts.path, query, owner

        def do_GET(self) -> None:
            path, query, owner = self._query()
            try:
                if path == "/hello":
                    s3()
                    self._json(200, {})
                elif path == "/list" and query.get("bucket"):
                    listed = s3().list_objects_v2(Bucket=query["bucket"], Prefix=query.get("prefix", ""),
                                                  MaxKeys=int(query.get("max_keys") or 1000), **owner)
                    self._json(200, {"IsTruncated": bool(listed.get("IsTruncated")),
                                     "Contents": [{"Key": entry["Key"]} for entry in listed.get("Contents", [])]})
                elif path == "/object" and query.get("bucket") and query.get("key"):
                    self._send_object(s3().get_object(Bucket=query["bucket"], Key=query["key"], **owner))
                else:
                    self._json(400, {"detail": f"kiln's S3 relay does not know GET {path} with these parameters"})
            except Exception as error:
                self._failed(error)

        def _send_object(self, response: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(response["ContentLength"]))
            self.end_headers()
            try:
                for chunk in response["Body"].iter_chunks(BLOCK):
                    self.wfile.write(chunk)
            except Exception:  # S3 stopped mid-object: the guest sees fewer bytes than announced
                self.close_connection = True

        def do_PUT(self) -> None:
            path, query, owner = self._query()
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                self.close_connection = True
                self._json(411, {"detail": "kiln's S3 relay needs the upload's Content-Length"})
                return
            body = _Upload(self.rfile, int(length))
            try:
                if path != "/object" or not query.get("bucket") or not query.get("key"):
                    raise ValueError(f"kiln's S3 relay does not know PUT {path} with these parameters")
                s3().upload_fileobj(body, query["bucket"], query["key"], ExtraArgs=owner or None)
                if body.remaining:
                    raise OSError(f"the upload ended with {body.remaining} bytes not read")
                self._json(200, {})
            except ClientError as error:  # upload_file's S3UploadFailedError in a sandbox: its words
                body.drain()
                self._json(_status(error), {"upload": str(error)})
            except Exception as error:
                body.drain()
                if isinstance(error, ValueError):
                    self._json(400, {"detail": str(error)})
                else:
                    self._failed(error)

        log_message = file_log(log)

    Handler(connection, ("guest", 0), None)  # type: ignore[arg-type]


def main(config: Path) -> None:
    from kiln.runtime.vm_metadata import serve_stdin

    serve_stdin(serve_connection, config)


if __name__ == "__main__":
    # run as a script with -I: kiln is imported from the tree this file is in, not whatever is installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main(Path(sys.argv[1]))
