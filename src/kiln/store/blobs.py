"""Content-addressed blobs of one region's OCI layout: durable writes, verified reads, quarantine.

A blob is written to ``<region>/tmp/``, hashed while written, fsynced, checked against its digest
and renamed into ``blobs/sha256/`` (then the directory is fsynced): nothing in ``blobs/`` is partial.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from kiln.errors import InvalidInput, NotFound

CHUNK = 1 << 20


def hex_of(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise InvalidInput(f"not a sha256 digest: {digest!r}")
    return hexpart


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobQuarantined(NotFound):
    """The blob failed verification and was moved to ``quarantine/``; it is never served."""


class BlobWriter:
    """A writable file object that hashes what it writes and commits it as a blob on ``commit()``."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        store.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="blob-")
        self._file = os.fdopen(fd, "wb")
        self.tmp_path = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest: str | None = None

    def write(self, data: bytes) -> int:  # file-object protocol
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._file.flush()

    def commit(self, expected: str | None = None) -> str:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        digest = "sha256:" + self._hash.hexdigest()
        if expected is not None and expected != digest:
            self.abort()
            raise InvalidInput(f"blob digest mismatch: expected {expected}, content hashes to {digest}")
        self._store.install(self.tmp_path, digest)
        self.digest = digest
        return digest

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None or self.digest is None:
            self.abort()


class BlobStore:
    """The ``blobs/sha256`` directory of one region (plus its ``tmp/`` and ``quarantine/``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blob_dir = self.root / "blobs" / "sha256"
        self.tmp_dir = self.root / "tmp"
        self.quarantine_dir = self.root / "quarantine"

    def path(self, digest: str) -> Path:
        """The path of a present, non-quarantined blob."""
        hexpart = hex_of(digest)
        path = self.blob_dir / hexpart
        if path.exists():
            return path
        if (self.quarantine_dir / hexpart).exists():
            raise BlobQuarantined(
                f"blob {digest} is quarantined (failed verification)",
                hint="run `kiln store fsck`; the image using it cannot be unpacked, exported or launched",
            )
        raise NotFound(f"blob {digest} is missing from {self.blob_dir}")

    def exists(self, digest: str) -> bool:
        return (self.blob_dir / hex_of(digest)).exists()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def install(self, tmp_path: Path, digest: str) -> None:
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        final = self.blob_dir / hex_of(digest)
        if final.exists():
            tmp_path.unlink()
            os.utime(final)  # refresh mtime: a fresh writer is about to reference it (gc grace)
            return
        os.rename(tmp_path, final)
        fsync_dir(self.blob_dir)

    def put_bytes(self, data: bytes) -> str:
        with self.writer() as writer:
            writer.write(data)
            return writer.commit()

    def put_stream(self, chunks: Iterable[bytes], expected: str | None = None) -> str:
        with self.writer() as writer:
            for chunk in chunks:
                writer.write(chunk)
            return writer.commit(expected)

    def put_file(self, source: BinaryIO, expected: str | None = None) -> str:
        return self.put_stream(iter(lambda: source.read(CHUNK), b""), expected)

    def read_bytes(self, digest: str) -> bytes:
        data = self.path(digest).read_bytes()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            self.quarantine(digest)
            raise BlobQuarantined(f"blob {digest} is corrupt and was quarantined")
        return data

    def hash_file(self, digest: str) -> str:
        hasher = hashlib.sha256()
        with open(self.path(digest), "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                hasher.update(chunk)
        return "sha256:" + hasher.hexdigest()

    def quarantine(self, digest: str) -> Path:
        hexpart = hex_of(digest)
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        target = self.quarantine_dir / hexpart
        source = self.blob_dir / hexpart
        if source.exists():
            os.rename(source, target)
            fsync_dir(self.blob_dir)
        return target

    def delete(self, digest: str) -> int:
        path = self.blob_dir / hex_of(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def all_digests(self) -> list[str]:
        if not self.blob_dir.exists():
            return []
        return sorted("sha256:" + p.name for p in self.blob_dir.iterdir() if len(p.name) == 64)

    def clear_tmp(self, older_than: float) -> list[Path]:
        removed = []
        if self.tmp_dir.exists():
            for entry in self.tmp_dir.iterdir():
                if entry.lstat().st_mtime < older_than:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
                    removed.append(entry)
        return removed
