"""Layer capture: a directory (or an overlayfs upper dir) to a reproducible compressed tar blob.

Entries are sorted, uid/gid/mode and xattrs kept, mtimes clamped to SOURCE_DATE_EPOCH when set, no
uname/atime/ctime. In an overlay upper dir a whiteout (char device 0/0) becomes ``.wh.<name>`` and an
opaque dir (``trusted.overlay.opaque=y``) gets a ``.wh..wh..opq`` entry. The tar is streamed through
a hasher (diff_id), a fixed-parameter compressor and a blob writer, each on a thread of its own
(``kiln.store.layer_stream``): no layer is held in memory.
"""

from __future__ import annotations

import functools
import gzip
import os
import stat
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from kiln.errors import InvalidInput
from kiln.store.blobs import BlobStore
from kiln.store.fidelity import CaptureRecord, symlink_escapes
from kiln.store.layer_stream import LayerStream, zstd_writer
from kiln.store.layout import LAYER_GZIP, LAYER_TAR, LAYER_ZSTD, Descriptor
from kiln.store.tarheaders import byte_sum

# Level 1: a build's layer (a Debian minbase, apt's lists and caches: 150-190 MB) compresses at
# half level 3's CPU (0.8 s against 1.6 s) into a blob 5% larger.
ZSTD_LEVEL = 1
ZSTD_THREADS = 2  # fixed: the frame layout (and so the digest) depends on threads=0 vs >= 1 (not on how many)
GZIP_LEVEL = 6
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
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


def source_date_epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    return int(value) if value else None


UNSUPPORTED_OVERLAY = ("redirect", "metacopy")


def _xattrs(path: str, overlay: bool = False) -> tuple[dict[str, bytes], list[str]]:
    """The xattrs a layer keeps, and the names it drops (overlayfs' own, and unreadable ones)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}, []
    found = {}
    dropped = []
    for name in sorted(names):
        if name.startswith(OVERLAY_XATTR_PREFIXES):
            if overlay and name.rsplit(".", 1)[-1] in UNSUPPORTED_OVERLAY:
                raise InvalidInput(
                    f"overlay upper dir uses {name} (content lives elsewhere); "
                    "mount the overlay with redirect_dir=off,metacopy=off",
                    location=path,
                )
            dropped.append(name)
            continue
        try:
            found[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            dropped.append(name)
    return found, dropped


def _is_opaque(path: str) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s8s247x")  # the fields kiln writes; the rest stays NUL


def _ustar_block(
    name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, kind: bytes, link: bytes
) -> bytes:
    header = _USTAR.pack(
        name,  # struct pads with NULs and cuts at 100 bytes
        b"%07o\0" % mode,
        b"%07o\0" % uid,
        b"%07o\0" % gid,
        b"%011o\0" % size,
        b"%011o\0" % mtime,
        b"        ",
        kind,
        link,
        tarfile.POSIX_MAGIC,  # then uname, gname, devmajor, devminor: empty, as tarfile writes them
    )
    return header[:148] + b"%06o\0" % byte_sum(header) + header[155:]


def _pax_records(records: dict[str, str]) -> bytes:
    body = b""
    for key, value in records.items():
        item = f" {key}={value}\n".encode()
        length = prev = 0
        while True:  # the length prefix counts its own digits
            length = len(item) + len(str(prev))
            if length == prev:
                break
            prev = length
        body += str(length).encode() + item
    header = _ustar_block(b"././@PaxHeader", 0, 0, 0, len(body), 0, tarfile.XHDTYPE, b"")
    return header + body + b"\0" * (-len(body) % tarfile.BLOCKSIZE)


def _ustar(
    name: str, mode: int, uid: int, gid: int, size: int, mtime: int, kind: bytes, link: str
) -> bytes | None:
    """Header bytes for an entry without xattrs: plain ustar, with a pax record for long or non-ASCII
    names. None when a number needs pax too, or a name is not UTF-8 (tarfile handles those rare
    entries: it keeps such a name byte-exact, marking the record ``hdrcharset=BINARY``)."""
    if not 0 <= uid < 8**7 or not 0 <= gid < 8**7 or not 0 <= size < 8**11 or not 0 <= mtime < 8**11:
        return None
    try:
        raw_name, raw_link = name.encode(), link.encode()
    except UnicodeEncodeError:
        return None
    records = {}
    if len(raw_name) > 100 or not raw_name.isascii():
        records["path"] = name
        raw_name = name.encode("ascii", "replace")
    if len(raw_link) > 100 or not raw_link.isascii():
        records["linkpath"] = link
        raw_link = link.encode("ascii", "replace")
    block = _ustar_block(raw_name, mode, uid, gid, size, mtime, kind, raw_link)
    return _pax_records(records) + block if records else block


class TreeWriter:
    """Writes a directory tree as a tar stream, reproducibly (headers built directly: tarfile's
    per-entry overhead dominated capture time; entries needing pax headers still use tarfile)."""

    def __init__(
        self, sink: LayerStream, *, overlay: bool, clamp: int | None, record: CaptureRecord | None = None
    ) -> None:
        self.sink = sink
        self.overlay = overlay
        self.clamp = clamp
        self.record = record
        self.links: dict[tuple[int, int], str] = {}

    def _mtime(self, st: os.stat_result) -> int:
        mtime = int(st.st_mtime)
        return min(mtime, self.clamp) if self.clamp is not None else mtime

    def _header(
        self,
        name: str,
        mode: int,
        st: os.stat_result | None,
        kind: bytes,
        *,
        size: int = 0,
        link: str = "",
        path: str | None = None,
        dev: tuple[int, int] = (0, 0),
        final_mtime: int | None = None,
    ) -> list[str]:
        """Write one entry's header; returns the xattr names the layer drops."""
        uid, gid = (st.st_uid, st.st_gid) if st is not None else (0, 0)
        if final_mtime is not None:
            mtime = min(final_mtime, self.clamp) if self.clamp is not None else final_mtime
        else:
            mtime = self._mtime(st) if st is not None else 0
        xattrs, dropped = _xattrs(path, self.overlay) if path is not None else ({}, [])
        if self.record is not None:
            self.record.entry(size)
            on_disk = final_mtime * 1_000_000_000 if final_mtime is not None else st.st_mtime_ns if st else None
            if on_disk is not None and on_disk != mtime * 1_000_000_000:
                self.record.mtimes.append((name.rstrip("/"), mtime))
        header = None
        if not xattrs and kind not in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            header = _ustar(name, mode, uid, gid, size, mtime, kind, link)
        if header is None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid = kind, mode, uid, gid
            info.size, info.mtime, info.linkname = size, mtime, link
            info.uname = info.gname = ""
            info.devmajor, info.devminor = dev
            if xattrs:
                info.pax_headers = {
                    f"SCHILY.xattr.{key}": value.decode("utf-8", "surrogateescape")
                    for key, value in xattrs.items()
                }
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        self.sink.write(header)
        return dropped

    def _data(self, path: str, st: os.stat_result) -> None:
        size = st.st_size
        if size == 0:  # many are: nothing to read, so no descriptor to open
            if self.record is not None:
                after = os.lstat(path)
                if (after.st_ino, after.st_size, after.st_mtime_ns) != (st.st_ino, 0, st.st_mtime_ns):
                    self.record.refuse(f"{path} changed while being captured")
            return
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # a bare descriptor: most files are small
        try:
            if self.sink.write_from(fd, size) < size:
                raise InvalidInput(f"{path} shrank while being captured")
            if self.record is not None:
                after = os.fstat(fd)
                if (after.st_ino, after.st_size, after.st_mtime_ns) != (st.st_ino, size, st.st_mtime_ns):
                    self.record.refuse(f"{path} changed while being captured")
        finally:
            os.close(fd)
        self._pad(size)

    def _pad(self, size: int) -> None:
        """Fill a member's data of ``size`` bytes up to a whole tar block."""
        remainder = size % tarfile.BLOCKSIZE
        if remainder:
            self.sink.write(b"\0" * (tarfile.BLOCKSIZE - remainder))

    def _whiteout(self, name: str) -> None:
        self._header(name, 0o644, None, tarfile.REGTYPE)

    def _note_dropped(self, name: str, dropped: list[str], opaque: bool = False) -> None:
        if self.record is None or not dropped:
            return
        if all(key.startswith(OVERLAY_XATTR_PREFIXES) for key in dropped):
            self.record.overlay_xattrs.append((name, opaque))
        else:
            self.record.refuse(f"{name}: unreadable xattrs {', '.join(dropped)}")

    def write_dir(self, root: str, prefix: str = "") -> None:
        with os.scandir(root) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        for entry in entries:
            name = prefix + entry.name
            if self.entry(name, entry.path, entry.stat(follow_symlinks=False)):
                self.write_dir(entry.path, name + "/")

    def entry(self, name: str, path: str, st: os.stat_result, *, final_mtime: int | None = None) -> bool:
        """Write one entry (of a directory, its header); True for a directory.

        ``final_mtime`` is the mtime a directory will have once whoever fills it is done (see
        ``kiln.store.trailing``); otherwise the entry's own is used.
        """
        record = self.record
        mode = st.st_mode
        perm = stat.S_IMODE(mode)
        if record is not None and name.rpartition("/")[2].startswith(WHITEOUT_PREFIX):
            record.refuse(f"{name}: a name unpacking reads as a whiteout")
        if stat.S_ISDIR(mode):
            dropped = self._header(name + "/", perm, st, tarfile.DIRTYPE, path=path, final_mtime=final_mtime)
            opaque = self.overlay and _is_opaque(path)
            if opaque:
                self._whiteout(f"{name}/{OPAQUE_MARKER}")
            self._note_dropped(name, dropped, opaque)
            return True
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                dropped = self._header(name, perm, st, tarfile.LNKTYPE, link=self.links[key], path=path)
                self._note_dropped(name, dropped)
                return False
            if st.st_nlink > 1:  # (a trailing capture notes the files that get links later itself)
                self.links.setdefault(key, name)
            dropped = self._header(name, perm, st, tarfile.REGTYPE, size=st.st_size, path=path)
            self._note_dropped(name, dropped)
            self._data(path, st)
        elif stat.S_ISLNK(mode):
            target = os.readlink(path)
            if record is not None and symlink_escapes(name, target):
                record.refuse(f"{name}: symlink target {target!r} escapes the root")
            dropped = self._header(name, perm, st, tarfile.SYMTYPE, link=target, path=path)
            self._note_dropped(name, dropped)
        elif stat.S_ISCHR(mode) and self.overlay and st.st_rdev == 0:
            parent, _, base = name.rpartition("/")
            self._whiteout(f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            dropped = self._header(
                name, perm, st, kind, path=path, dev=(os.major(st.st_rdev), os.minor(st.st_rdev))
            )
            self._note_dropped(name, dropped)
        elif stat.S_ISFIFO(mode):
            self._note_dropped(name, self._header(name, perm, st, tarfile.FIFOTYPE, path=path))
        elif record is not None:  # sockets are not file content; skipped like tar does
            record.refuse(f"{name}: a socket (not part of the layer)")
        return False

    def finish(self) -> None:
        self.sink.write(b"\0" * (tarfile.BLOCKSIZE * 2))
        remainder = self.sink.tell() % tarfile.RECORDSIZE
        if remainder:
            self.sink.write(b"\0" * (tarfile.RECORDSIZE - remainder))
        self.sink.flush()


def write_tar(
    source: Path,
    sink: BinaryIO,
    *,
    overlay: bool = False,
    clamp: int | None = None,
    record: CaptureRecord | None = None,
    compression: str = "none",
) -> str:
    """Write the tar stream of ``source`` to ``sink``, compressed as ``compression`` says; returns the
    uncompressed stream's sha256 (the diff_id)."""
    if not Path(source).is_dir():
        raise InvalidInput(f"not a directory: {source}")
    stream = open_layer_stream(sink, compression)  # hashing, compressing and writing beside the walk
    try:
        writer = TreeWriter(stream, overlay=overlay, clamp=clamp, record=record)
        writer.write_dir(str(source))
        writer.finish()
    except BaseException:
        stream.abort()
        raise
    stream.close()
    return "sha256:" + stream.hash.hexdigest()


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


def _compressing(compression: str) -> Any:
    if compression == "zstd":
        return functools.partial(zstd_writer, ZSTD_LEVEL, ZSTD_THREADS)
    if compression == "gzip":
        return functools.partial(open_compressed_sink, compression="gzip")
    if compression == "none":
        return None
    raise InvalidInput(f"unknown layer compression {compression!r} (zstd, gzip or none)")


def open_layer_stream(target: BinaryIO, compression: str) -> LayerStream:
    """The sink a :class:`TreeWriter` writes a layer to: ``target`` gets it compressed."""
    return LayerStream(target, _compressing(compression))


def capture(
    source: Path,
    blobs: BlobStore,
    *,
    overlay: bool = False,
    compression: str = "zstd",
    clamp: int | None = None,
    record: CaptureRecord | None = None,
) -> LayerInfo:
    """Capture ``source`` as one layer blob; ``overlay`` converts overlayfs whiteouts and opaque dirs.

    ``record`` collects what lets ``source`` stand in for the blob's unpacked dir (``kiln.store.adopt``).
    """
    media_type = COMPRESSIONS.get(compression)
    if media_type is None:
        raise InvalidInput(f"unknown layer compression {compression!r} (zstd, gzip or none)")
    if clamp is None:
        clamp = source_date_epoch()
    with blobs.writer() as writer:
        diff_id = write_tar(source, writer, overlay=overlay, clamp=clamp, record=record,  # type: ignore[arg-type]
                            compression=compression)
        digest = writer.commit()
        return LayerInfo(digest, diff_id, writer.size, media_type)
