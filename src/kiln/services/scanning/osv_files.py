"""OSV records out of what OSV publishes: a zip of JSON records (its per-ecosystem ``all.zip``), a
directory of JSON files, or one JSON file holding a record or a list of records. Each record comes with
where it was read (``all.zip:DSA-1-1.json``), so an error can name it."""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kiln.errors import InvalidInput

Located = tuple[str, Any]  # (where it was read, the decoded JSON)


def read_records(path: Path, label: str | None = None) -> Iterator[Located]:
    """Every record under ``path``; one InvalidInput naming the file (``label`` for ``path``: the URL a
    download came from) for anything unreadable."""
    name = label or str(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise InvalidInput("no *.json files in the directory", location=name)
        for file in files:
            yield from _decoded(str(file), file.read_bytes())
    elif path.is_file():
        if zipfile.is_zipfile(path):
            yield from _zip_records(path, name)
        elif path.suffix == ".zip" or path.read_bytes()[:2] == b"PK":
            raise InvalidInput("not a zip archive (corrupt or partial download)", location=name)
        else:
            yield from _decoded(name, path.read_bytes())
    else:
        raise InvalidInput("no such file or directory", location=name)


def _zip_records(path: Path, name: str) -> Iterator[Located]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise InvalidInput(f"corrupt zip archive ({error})", location=name) from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir() and info.filename.endswith(".json")]
        if not members:
            raise InvalidInput("the zip archive holds no *.json records", location=name)
        for info in members:
            where = f"{name}:{info.filename}"
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
                raise InvalidInput(f"corrupt zip member ({error})", location=where,
                                   hint="the archive is damaged or was cut short; fetch it again") from None
            yield from _decoded(where, data)


def _decoded(where: str, data: bytes) -> Iterator[Located]:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        line = f":{error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
        raise InvalidInput(f"not JSON ({error})", location=f"{where}{line}") from None
    if isinstance(document, list):
        for index, record in enumerate(document):
            yield f"{where}[{index}]", record
    else:
        yield where, document
