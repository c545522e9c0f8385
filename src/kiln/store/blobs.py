"""Content-addressed blobs of one region's OCI layout: durable writes, verified reads, quarantine.

A blob is written to ``<region>/tmp/``, hashed while written, fsynced, checked against its digest
and renamed into ``blobs/sha256/`` (then the directory is fsynced): nothing in ``blobs/`` is partial.
Within :func:`batched_dir_sync` the directory is fsynced once for all the blobs the block renamed,
when the block ends or before anything names them (:func:`sync_pending_dirs`, which
``layout.write_file_atomic`` calls before writing ``index.json``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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


_pending = threading.local()  # the directories a batch renamed blobs into, not yet fsynced


@contextmanager
def batched_dir_sync() -> Iterator[None]:
    """Blobs installed by this thread within the block have their directory fsynced once, when the
    block ends, instead of once each. Each blob's own data is still fsynced before its rename, and a
    rename whose directory entry a crash lost leaves only a temp file for gc: nothing may name the
    blobs before the block ends or :func:`sync_pending_dirs` runs (``write_file_atomic`` calls it)."""
    outer = getattr(_pending, "dirs", None)
    if outer is not None:  # nested: the outermost block syncs
        yield
        return
    _pending.dirs = set()
    try:
        yield
    finally:
        try:
            sync_pending_dirs()
        finally:
            _pending.dirs = None


def sync_pending_dirs() -> None:
    """Fsync the directories blobs were renamed into within this thread's open batch (if any)."""
    dirs: set[Path] | None = getattr(_pending, "dirs", None)
    while dirs:
        fsync_dir(dirs.pop())


def _sync_dir_of_install(path: Path) -> None:
    dirs: set[Path] | None = getattr(_pending, "dirs", None)
    if dirs is None:
        fsync_dir(path)
    else:
        dirs.add(path)


StatKey = tuple[int, int, int, int]


def _stat_key(path: Path) -> StatKey:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _stamp(path: Path) -> StatKey | None:
    """Give the file an mtime within the last second with random nanoseconds, and return its identity:
    a write (or truncation) after this sets the file system's clock tick as mtime, which is not that
    value (odds of 1 in a billion), so an unchanged identity shows the file unwritten. None when the
    file system does not keep nanoseconds (a write within the same tick would keep the mtime)."""
    stamp = time.time_ns() - secrets.randbelow(999_999_999) - 1
    os.utime(path, ns=(stamp, stamp))
    key = _stat_key(path)
    return key if key[3] == stamp else None


class _Verified:
    """Blob files this process hashed while writing them, by inode (every hard link of a blob in
    another region's store is the same file), with the identity stamped on them (``_stamp``): size and
    mtime. A file whose identity is unchanged has not been written to, truncated or replaced since
    (linking or renaming keeps its mtime; gc's refresh re-stamps it, ``BlobStore.refresh``), so
    re-reading it to check its digest would prove again what the hash proved. Corruption below the
    file system (the medium) is fsck's to find, as it was before: a read-back right after writing is
    served from the page cache and never saw the medium either."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._known: OrderedDict[tuple[int, int], StatKey] = OrderedDict()

    def record(self, key: StatKey) -> None:
        with self._lock:
            self._known[key[:2]] = key
            self._known.move_to_end(key[:2])
            while len(self._known) > self._size:
                self._known.popitem(last=False)

    def unchanged(self, path: Path) -> bool:
        try:
            key = _stat_key(path)
        except OSError:
            return False
        with self._lock:
            return self._known.get(key[:2]) == key


VERIFIED = _Verified()


class BlobQuarantined(NotFound):
    """The blob failed verification and was moved to ``quarantine/``; it is never served."""


WRITEBACK_STEP = 8 << 20
_SYNC_FILE_RANGE_WRITE = 2
_libc = ctypes.CDLL(None, use_errno=True)
_sync_file_range = getattr(_libc, "sync_file_range", None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing ``length`` bytes at ``offset`` of ``fd`` out to disk, not waiting for it: a large
    blob's closing fsync then waits for its last few megabytes, not for all of them (sync_file_range;
    nothing where the C library lacks it — fsync still makes the blob durable)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


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
        self._written_back = 0  # bytes whose write-out to disk was started (commit's fsync waits for the rest)
        self.digest: str | None = None

    def write(self, data: bytes) -> int:  # file-object protocol
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        if self.size - self._written_back >= WRITEBACK_STEP:
            self._file.flush()
            start_writeback(self._file.fileno(), self._written_back, self.size - self._written_back)
            self._written_back = self.size
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
        key = None if self._store.exists(digest) else _stamp(self.tmp_path)
        self._store.install(self.tmp_path, digest)
        if key is not None and _stat_key(self._store.blob_dir / hex_of(digest)) == key:  # ours was kept
            VERIFIED.record(key)
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
            self.refresh(digest)  # a fresh writer is about to reference it (gc grace)
            return
        os.rename(tmp_path, final)
        _sync_dir_of_install(self.blob_dir)

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

    def refresh(self, digest: str) -> None:
        """Refresh the blob's mtime (a writer is about to reference it: gc's grace period), keeping it
        known as verified when it was (``_Verified``)."""
        path = self.blob_dir / hex_of(digest)
        if VERIFIED.unchanged(path) and (key := _stamp(path)) is not None:
            VERIFIED.record(key)
        else:
            os.utime(path)

    def verified_unchanged(self, digest: str) -> bool:
        """Whether the blob is one this process hashed and whose file has not changed since (see
        ``_Verified``): its digest then holds without reading it again."""
        return VERIFIED.unchanged(self.blob_dir / hex_of(digest))

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
