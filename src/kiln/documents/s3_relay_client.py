"""The S3 client of kiln's runner in a VM guest: each call a request to the host's S3 relay
(``kiln.runtime.vm_s3_relay``, reached at 169.254.169.254:8773 on the guest's link), which holds the
credentials and enforces the build's network policy, as EC2 keeps credentials behind the instance
profile. Standard library only (the guest has no boto3).

It has the few boto3 client methods the S3 actions call (``get_object``, ``list_objects_v2``,
``upload_file``) with their shapes. The relay's protocol, HTTP/1.1 on one kept-alive connection:

- ``GET /hello``: 200 when the relay may make an S3 client for its instance; 403 with
  ``{"refused": MESSAGE}`` when the policy forbids it (NetworkRefused here).
- ``GET /list?bucket=&prefix=&max_keys=&owner=``: 200 with ``{"Contents": [{"Key": …}], "IsTruncated": …}``.
- ``GET /object?bucket=&key=&owner=``: 200 with the object's bytes (``Content-Length``), streamed.
- ``PUT /object?bucket=&key=&owner=`` with the file's bytes (``Content-Length``): 200 once stored.
- a failure: a non-200 status and ``{"detail": TEXT}``, TEXT what ``kiln.documents.actions.s3.detail``
  says of the host's error (so a guest's step fails in the words of a sandbox's); S3 refusing an
  upload: ``{"upload": TEXT}``, boto3's words for it.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from kiln.documents.actions.s3 import S3Failed
from kiln.documents.network import NetworkRefused

RELAY_ADDRESS = "169.254.169.254"
RELAY_PORT = 8773
TIMEOUT = 300.0  # seconds without a byte from the relay (it waits on S3 with boto3's own timeouts)
BLOCK = 1 << 20


class UploadFailed(Exception):
    """An upload the relay could not store (``upload_file``'s failure, in boto3's words)."""


class _Connection(http.client.HTTPConnection):
    """An HTTP connection over the socket ``opener`` gives (tests hand the relay a socket pair)."""

    def __init__(self, opener: Callable[[], socket.socket] | None) -> None:
        super().__init__(RELAY_ADDRESS, RELAY_PORT, timeout=TIMEOUT, blocksize=BLOCK)
        self._opener = opener

    def connect(self) -> None:
        if self._opener is None:
            super().connect()
        else:
            self.sock = self._opener()
            self.sock.settimeout(self.timeout)


class _Body:
    def __init__(self, response: http.client.HTTPResponse, connection: http.client.HTTPConnection) -> None:
        self._response = response
        self._connection = connection

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        """The bytes as they come; stops short if the relay does (the caller compares the count)."""
        complete = False
        try:
            while chunk := self._response.read(size):
                yield chunk
            complete = True
        except (http.client.IncompleteRead, OSError):
            return
        finally:
            self._response.close()
            if not complete:  # bytes of this object may still be on the way: not a connection to reuse
                self._connection.close()


class RelayS3:
    """boto3's S3 client, as far as the S3 actions use it, through the host's relay."""

    upload_errors = (UploadFailed,)

    def __init__(self, opener: Callable[[], socket.socket] | None = None) -> None:
        self._connection = _Connection(opener)
        response = self._request("GET", "/hello", {})
        body = response.read()
        if response.status == 403:
            raise NetworkRefused(self._failure(response, body, refused=True))
        self._check(response, body)

    # boto3's methods ---------------------------------------------------------------------------
    def list_objects_v2(self, *, Bucket: str, Prefix: str = "", MaxKeys: int = 1000,
                        ExpectedBucketOwner: str | None = None) -> dict[str, Any]:
        response = self._request("GET", "/list", {"bucket": Bucket, "prefix": Prefix, "max_keys": str(MaxKeys),
                                                  "owner": ExpectedBucketOwner})
        body = response.read()
        self._check(response, body)
        return dict(json.loads(body))

    def get_object(self, *, Bucket: str, Key: str, ExpectedBucketOwner: str | None = None) -> dict[str, Any]:
        response = self._request("GET", "/object", {"bucket": Bucket, "key": Key, "owner": ExpectedBucketOwner})
        self._check(response)
        return {"Body": _Body(response, self._connection), "ContentLength": response.length}

    def upload_file(self, Filename: str, Bucket: str, Key: str,
                    ExtraArgs: dict[str, str] | None = None) -> None:
        owner = (ExtraArgs or {}).get("ExpectedBucketOwner")
        with open(Filename, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            response = self._request("PUT", "/object", {"bucket": Bucket, "key": Key, "owner": owner}, body=source,
                                     headers={"Content-Length": str(size)})
        body = response.read()
        if response.status == 200:
            return
        try:
            refusal = str(json.loads(body)["upload"])
        except (ValueError, KeyError, TypeError):  # not S3 refusing the object: the relay's failure
            raise S3Failed(self._failure(response, body)) from None
        raise UploadFailed(f"Failed to upload {Filename} to {Bucket}/{Key}: {refusal}")

    # the wire ----------------------------------------------------------------------------------
    def _request(self, method: str, path: str, query: dict[str, str | None], *, body: Any = None,
                 headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        target = path + "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        try:
            self._connection.request(method, target, body=body, headers=headers or {})
            return self._connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            self._connection.close()
            raise S3Failed(f"kiln's S3 relay ({RELAY_ADDRESS}:{RELAY_PORT}) did not answer: {error}") from None

    def _failure(self, response: http.client.HTTPResponse, body: bytes | None = None, *, refused: bool = False) -> str:
        raw = response.read() if body is None else body
        try:
            answer = json.loads(raw)
            return str(answer["refused" if refused else "detail"])
        except (ValueError, KeyError, TypeError):
            return f"kiln's S3 relay answered {response.status} {response.reason}"

    def _check(self, response: http.client.HTTPResponse, body: bytes | None = None) -> None:
        if response.status != 200:
            failure = self._failure(response, body)
            response.close()
            raise S3Failed(failure)
