"""Layer capture: a directory (or an overlayfs upper dir) to a reproducible compressed tar blob.

Entries are sorted, uid/gid/mode and xattrs kept, mtimes clamped to SOURCE_DATE_EPOCH when set, no
uname/atime/ctime. In an overlay upper dir a whiteout (char device 0/0) becomes ``.wh.<name>`` and an
opaque dir (``trusted.overlay.opaque=y``) gets a ``.wh..wh..opq`` entry. The tar is streamed through
a hasher (diff_id) into a fixed-parameter compressor into a blob writer: no layer is held in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from kiln.errors import InvalidInput
from kiln.store.blobs import BlobStore
from kiln.store.layout import LAYER_GZIP, LAYER_TAR, LAYER_ZSTD, Descriptor

ZSTD_LEVEL = 3
ZSTD_THREADS = 2  # fixed: the frame layout (and so the digest) depends on threads=0 vs >= 1
GZIP_LEVEL = 6
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
COPY_BUFSIZE = 1 << 20

COMPRESSIONS = {"zstd": LAYER_ZSTD, "gzip": LAYER_GZIP, "none": LAYER_TAR}


@dataclass(frozen=True)
class LayerInfo:
    digest: str
    diff_id: str
    size: int
    media_type: str

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)


class _HashingSink:
    """Hashes the uncompressed tar (the diff_id) and passes it on."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.hash = hashlib.sha256()
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.target.write(data)
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset


def source_date_epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    return int(value) if value else None


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    found = {}
    for name in sorted(names):
        if name.startswith(("trusted.overlay.", "user.overlay.")):
            continue
        try:
            found[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return found


def _is_opaque(path: str) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


class TreeWriter:
    """Writes a directory tree into an open tarfile, reproducibly."""

    def __init__(self, tar: tarfile.TarFile, *, overlay: bool, clamp: int | None) -> None:
        self.tar = tar
        self.overlay = overlay
        self.clamp = clamp
        self.links: dict[tuple[int, int], str] = {}

    def _mtime(self, st: os.stat_result) -> int:
        mtime = int(st.st_mtime)
        return min(mtime, self.clamp) if self.clamp is not None else mtime

    def _info(self, name: str, st: os.stat_result, kind: bytes, path: str) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = self._mtime(st)
        xattrs = _xattrs(path)
        if xattrs:
            info.pax_headers = {
                f"SCHILY.xattr.{key}": value.decode("utf-8", "surrogateescape")
                for key, value in xattrs.items()
            }
        return info

    def _whiteout(self, name: str, st: os.stat_result) -> None:
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        info.mtime = self._mtime(st)
        info.uname = info.gname = ""
        self.tar.addfile(info)

    def write_dir(self, root: str, prefix: str = "") -> None:
        with os.scandir(root) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        for entry in entries:
            name = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            mode = st.st_mode
            path = entry.path
            if stat.S_ISDIR(mode):
                self.tar.addfile(self._info(name, st, tarfile.DIRTYPE, path))
                if self.overlay and _is_opaque(path):
                    self._whiteout(f"{name}/{OPAQUE_MARKER}", st)
                self.write_dir(path, name + "/")
            elif stat.S_ISREG(mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in self.links:
                    info = self._info(name, st, tarfile.LNKTYPE, path)
                    info.linkname = self.links[key]
                    self.tar.addfile(info)
                    continue
                if st.st_nlink > 1:
                    self.links[key] = name
                info = self._info(name, st, tarfile.REGTYPE, path)
                info.size = st.st_size
                with open(path, "rb") as handle:
                    self.tar.addfile(info, handle)
            elif stat.S_ISLNK(mode):
                info = self._info(name, st, tarfile.SYMTYPE, path)
                info.linkname = os.readlink(path)
                self.tar.addfile(info)
            elif stat.S_ISCHR(mode) and self.overlay and st.st_rdev == 0:
                parent, _, base = name.rpartition("/")
                self._whiteout(f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base, st)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                info = self._info(name, st, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE, path)
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                self.tar.addfile(info)
            elif stat.S_ISFIFO(mode):
                self.tar.addfile(self._info(name, st, tarfile.FIFOTYPE, path))
            # sockets are not file content; skipped like tar does


def write_tar(source: Path, sink: BinaryIO, *, overlay: bool = False, clamp: int | None = None) -> None:
    """Write the tar stream of ``source`` to ``sink`` (which needs write() and tell())."""
    if not Path(source).is_dir():
        raise InvalidInput(f"not a directory: {source}")
    with tarfile.open(
        fileobj=sink, mode="w", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFSIZE, encoding="utf-8"
    ) as tar:
        TreeWriter(tar, overlay=overlay, clamp=clamp).write_dir(str(source))


def zstd_compressor() -> zstandard.ZstdCompressor:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=ZSTD_THREADS, write_checksum=True)


def open_compressed_sink(target: BinaryIO, compression: str) -> BinaryIO:
    if compression == "zstd":
        return zstd_compressor().stream_writer(target, closefd=False)  # type: ignore[return-value]
    if compression == "gzip":
        return gzip.GzipFile(filename="", fileobj=target, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)
    if compression == "none":
        return target
    raise InvalidInput(f"unknown layer compression {compression!r} (zstd, gzip or none)")


def capture(
    source: Path,
    blobs: BlobStore,
    *,
    overlay: bool = False,
    compression: str = "zstd",
    clamp: int | None = None,
) -> LayerInfo:
    """Capture ``source`` as one layer blob; ``overlay`` converts overlayfs whiteouts and opaque dirs."""
    media_type = COMPRESSIONS.get(compression)
    if media_type is None:
        raise InvalidInput(f"unknown layer compression {compression!r} (zstd, gzip or none)")
    if clamp is None:
        clamp = source_date_epoch()
    with blobs.writer() as writer:
        compressed = open_compressed_sink(writer, compression)  # type: ignore[arg-type]
        hashing = _HashingSink(compressed)
        write_tar(source, hashing, overlay=overlay, clamp=clamp)  # type: ignore[arg-type]
        if compressed is not writer:
            compressed.close()
        digest = writer.commit()
        return LayerInfo(digest, "sha256:" + hashing.hash.hexdigest(), writer.size, media_type)
