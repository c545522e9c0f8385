"""WebDownload: fetch HTTP(S) URLs into files on the target, optionally checking a checksum.

The download runs on the host side and lands in the target through ``executor.host_path``: it is
written to a temporary file next to the destination, its checksum is verified, and only then is it
renamed into place, so a failed or mismatching download leaves nothing behind. Every connection,
redirects included, obeys the executor's network policy (``kiln.documents.network``); proxies from
the environment are used only by executors that may reach host-local addresses.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import posixpath
import ssl
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, ClassVar

from pydantic import Field, RootModel, field_validator, model_validator

from kiln.documents.actions.base import Action, ActionFailed, ActionResult, Inputs, StepContext, register
from kiln.documents.network import NetworkPolicy, NetworkRefused, connect, policy_of

ALGORITHMS = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
# AWSTOE retries each download internally, with exponential backoff, independent of maxAttempts.
ATTEMPTS = 5
BACKOFF = 1.0  # seconds before the second attempt; doubles after each failure
CHUNK = 1 << 20
REQUEST_TIMEOUT = 60.0
NEW_FILE_MODE = 0o644
USER_AGENT = "kiln-awstoe/1 (WebDownload)"


class WebDownloadItem(Inputs):
    source: str = Field(min_length=1)
    destination: str = Field(min_length=1)
    overwrite: bool = True
    checksum: str | None = None
    algorithm: str | None = None
    ignoreCertificateErrors: bool = False

    @field_validator("source")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parsed = urllib.parse.urlsplit(value)
        if parsed.scheme.lower() not in ("http", "https") or not parsed.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in ALGORITHMS:
            raise ValueError(f"must be one of {', '.join(ALGORITHMS)}")
        return None if value is None else value.upper()

    @model_validator(mode="after")
    def _checksum_pair(self) -> WebDownloadItem:
        if (self.checksum is None) != (self.algorithm is None):
            raise ValueError("checksum and algorithm must be given together")
        return self


class WebDownloadInputs(RootModel[list[WebDownloadItem]]):
    root: list[WebDownloadItem] = Field(min_length=1)


# shared with the S3 actions ---------------------------------------------------------------
@contextlib.contextmanager
def staged_file(destination: Path) -> Iterator[tuple[IO[bytes], Callable[[], None]]]:
    """A temporary file beside ``destination``; call ``commit()`` to rename it into place.

    Unless committed, the temporary file is removed on leaving the block (also on errors).
    """
    descriptor, temp = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".kiln-part",
                                        dir=destination.parent)
    committed = False

    def commit() -> None:
        nonlocal committed
        handle.flush()
        os.fsync(handle.fileno())
        try:
            mode = os.stat(destination).st_mode & 0o7777
        except FileNotFoundError:
            mode = NEW_FILE_MODE
        os.chmod(temp, mode)
        os.replace(temp, destination)
        committed = True

    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle, commit
    finally:
        if not committed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(ALGORITHMS[algorithm])
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# the action -----------------------------------------------------------------------------------
class _Retryable(Exception):
    """A failure worth another attempt (connection trouble, 5xx, 429)."""


def _target_destination(item: WebDownloadItem) -> str:
    """The target path of the file; a destination ending in ``/`` takes the URL's file name."""
    if not item.destination.endswith("/"):
        return item.destination
    name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(item.source).path))
    if name in ("", ".", ".."):
        raise ActionFailed(f"{item.source}: the URL names no file; give destination a file name")
    return item.destination + name


def _opener(policy: NetworkPolicy, tls: ssl.SSLContext) -> urllib.request.OpenerDirector:
    """urllib with connections that go only where ``policy`` allows (checked per connection)."""

    class GuardedHTTP(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = connect(policy, self.host, self.port, self.timeout)

    class GuardedHTTPS(http.client.HTTPSConnection):
        def connect(self) -> None:
            sock = connect(policy, self.host, self.port, self.timeout)
            self.sock = tls.wrap_socket(sock, server_hostname=self.host)

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(GuardedHTTP, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(GuardedHTTPS, req)

    handlers: list[Any] = [HTTPHandler(), HTTPSHandler(context=tls)]
    if not policy.host_local:
        handlers.append(urllib.request.ProxyHandler({}))  # a proxy on the host would be a way round
    return urllib.request.build_opener(*handlers)


def _open(item: WebDownloadItem, timeout: float, policy: NetworkPolicy) -> Any:
    """The HTTP response for ``item.source`` (redirects followed, each connection checked)."""
    tls = ssl.create_default_context()
    if item.ignoreCertificateErrors:
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    opener = _opener(policy, tls)
    request = urllib.request.Request(item.source, headers={"User-Agent": USER_AGENT})
    try:
        return opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        message = f"{item.source}: HTTP status {error.code} {error.reason or ''}".rstrip()
        if error.code >= 500 or error.code == 429:
            raise _Retryable(message) from None
        raise ActionFailed(message) from None
    except NetworkRefused as error:
        raise ActionFailed(f"{item.source}: refused: {error}") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, NetworkRefused):
            raise ActionFailed(f"{item.source}: refused: {error.reason}") from None
        if isinstance(error.reason, ssl.SSLError):
            raise ActionFailed(f"{item.source}: TLS error: {error.reason}") from None
        raise _Retryable(f"{item.source}: {error.reason}") from None
    except (OSError, http.client.HTTPException) as error:
        raise _Retryable(f"{item.source}: {error}") from None


def _fetch_once(item: WebDownloadItem, destination: Path, timeout: float, policy: NetworkPolicy) -> None:
    response = _open(item, timeout, policy)
    with response:
        if response.status != 200:
            raise ActionFailed(f"{item.source}: HTTP status {response.status} {response.reason or ''}".rstrip())
        digest = hashlib.new(ALGORITHMS[item.algorithm]) if item.algorithm else None
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        with staged_file(destination) as (handle, commit):
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as error:
                    raise _Retryable(f"{item.source}: download interrupted: {error!r}") from None
                if not chunk:
                    break
                handle.write(chunk)
                received += len(chunk)
                if digest is not None:
                    digest.update(chunk)
            if expected is not None and received != expected:
                raise _Retryable(f"{item.source}: download interrupted: got {received} of {expected} bytes")
            if digest is not None and item.checksum is not None:
                actual = digest.hexdigest()
                if actual.lower() != item.checksum.strip().lower():
                    raise ActionFailed(f"{item.source}: {item.algorithm} checksum mismatch: expected "
                                       f"{item.checksum.strip()}, got {actual}")
            commit()


def download(item: WebDownloadItem, context: StepContext) -> str:
    """Download one element; returns the target path written (or found already matching)."""
    target = _target_destination(item)
    destination = context.executor.host_path(target)
    if destination.is_dir():
        raise ActionFailed(f"destination {target} is a folder; end it with '/' to download into it")
    if destination.exists():
        if not item.overwrite:
            raise ActionFailed(f'file {target} already exists and "overwrite" is set to false')
        if item.algorithm and item.checksum and (
                file_digest(destination, item.algorithm) == item.checksum.strip().lower()):
            context.console(f"{target} already matches the {item.algorithm} checksum; not downloaded")
            return target
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ActionFailed(f"cannot create the folder of {target}: {error.strerror or error}") from None
    deadline = None if context.timeout is None else time.monotonic() + context.timeout
    delay = BACKOFF
    for attempt in range(1, ATTEMPTS + 1):
        remaining = REQUEST_TIMEOUT if deadline is None else min(REQUEST_TIMEOUT, deadline - time.monotonic())
        if remaining <= 0:
            raise ActionFailed(f"{item.source}: step timed out during the download")
        try:
            _fetch_once(item, destination, remaining, policy_of(context.executor))
        except _Retryable as error:
            if attempt == ATTEMPTS:
                raise ActionFailed(f"{error} (after {ATTEMPTS} attempts)") from None
            context.console(f"{error}; retrying in {delay:g}s (attempt {attempt + 1} of {ATTEMPTS})")
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise ActionFailed(f"{error}; no time left in the step to retry") from None
            time.sleep(delay)
            delay *= 2
        except OSError as error:
            raise ActionFailed(f"cannot write {target}: {error.strerror or error}") from None
        else:
            context.console(f"downloaded {item.source} to {target}")
            return target
    raise AssertionError("unreachable")


@register
class WebDownload(Action):
    name = "WebDownload"
    inputs = WebDownloadInputs
    outputs: ClassVar[tuple[str, ...]] = ("destination",)

    def execute(self, inputs: WebDownloadInputs, context: StepContext) -> ActionResult:
        written = [download(item, context) for item in inputs.root]
        return ActionResult(outputs={"destination": "\n".join(written)})
