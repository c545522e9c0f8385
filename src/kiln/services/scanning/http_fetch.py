"""Conditional HTTP downloads: ``If-None-Match``/``If-Modified-Since`` from what the last fetch saw, so an
unchanged file is a 304 and changes nothing. Bodies land in a temporary file renamed into place."""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiln import __version__
from kiln.errors import KilnError

Progress = Callable[[int, int | None], None]  # (bytes so far, total when the server says)
CHUNK = 1 << 16
TIMEOUT = 60.0


class FetchFailed(KilnError):
    code = "ServiceUnavailableException"
    http_status = 503


@dataclass(frozen=True)
class Validators:
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Fetched:
    changed: bool  # False: the server answered 304 Not Modified
    validators: Validators
    size: int = 0


def fetch(url: str, destination: Path, previous: Validators = Validators(), *,
          progress: Progress | None = None) -> Fetched:
    """GET ``url`` into ``destination`` unless the server says it has not changed since ``previous``."""
    request = urllib.request.Request(url, headers={"User-Agent": f"kiln/{__version__} (vulndb)"})
    if previous.etag:
        request.add_header("If-None-Match", previous.etag)
    if previous.last_modified:
        request.add_header("If-Modified-Since", previous.last_modified)
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        if error.code == 304:
            return Fetched(False, previous)
        raise FetchFailed(f"HTTP {error.code} {error.reason}", location=url) from None
    except (urllib.error.URLError, OSError) as error:
        raise FetchFailed(f"cannot fetch ({getattr(error, 'reason', error)})", location=url) from None
    with response:
        total = response.headers.get("Content-Length")
        expected = int(total) if total and total.isdigit() else None
        validators = Validators(response.headers.get("ETag"), response.headers.get("Last-Modified"))
        destination.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
        size = 0
        try:
            with os.fdopen(descriptor, "wb") as out:
                try:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        size += len(chunk)
                        if progress:
                            progress(size, expected)
                except (http.client.HTTPException, OSError) as error:
                    raise FetchFailed(f"the download broke off after {size} bytes ({error!r})", location=url) from None
            if expected is not None and size != expected:
                raise FetchFailed(f"the download stopped at {size} of {expected} bytes", location=url)
            os.replace(temporary, destination)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return Fetched(True, validators, size)


def cached_fetch(url: str, destination: Path, *, progress: Progress | None = None) -> Fetched:
    """``fetch`` with the validators kept beside the file (``<file>.meta.json``); a file whose copy went
    missing is fetched whole again."""
    meta = destination.with_name(destination.name + ".meta.json")
    previous = Validators()
    if meta.is_file() and destination.is_file():
        saved = json.loads(meta.read_text())
        previous = Validators(saved.get("etag"), saved.get("last_modified"))
    fetched = fetch(url, destination, previous, progress=progress)
    if fetched.changed:
        meta.write_text(json.dumps({"url": url, "etag": fetched.validators.etag,
                                    "last_modified": fetched.validators.last_modified}))
    return fetched
