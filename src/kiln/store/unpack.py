"""Unpacking layer blobs into overlayfs lower dirs, rejecting hostile input.

Each layer is unpacked once into ``KILN_HOME/cache/layers/<digest-hex>/`` via a temp dir and a rename.
OCI whiteouts become overlay whiteouts (char device 0/0) and ``.wh..wh..opq`` becomes the xattr
``trusted.overlay.opaque=y``. Rejected, naming the entry, with nothing written outside the target:
absolute paths, ``..``, links leaving the root, entries below a symlinked dir, device nodes (unless
allowed), conflicting repeats of an entry, names Linux cannot hold (a component over 255 bytes, a path
over 4095), and layers expanding past their size limit (``kiln.store.limits``), refused at the entry
that crosses it, before its data is written. Every refusal is one line naming the layer and the entry.
Names are kept byte-exact: one that is not UTF-8 is written as its bytes (tar's ``surrogateescape``)
and shown with backslash escapes.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import zstandard

from kiln.errors import InvalidInput
from kiln.home import cache_dir
from kiln.store.blobs import CHUNK, BlobQuarantined, BlobStore, hex_of
from kiln.store.fidelity import symlink_escapes
from kiln.store.layers import OPAQUE_MARKER, WHITEOUT_PREFIX
from kiln.store.layout import DOCKER_LAYER_GZIP, LAYER_GZIP, LAYER_TAR, LAYER_ZSTD
from kiln.store.limits import SizeLimit, stored_limit
from kiln.store.tarheaders import TarStream, members, open_stream

OPAQUE_XATTR = "trusted.overlay.opaque"
NAME_MAX = 255  # bytes in one path component
PATH_MAX = 4096  # bytes in a path, with its terminating NUL
TAR_ERRORS = (zstandard.ZstdError, tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error)


def size_limit() -> int:
    """The limit of a layer already in the store (see ``kiln.store.limits``)."""
    return stored_limit().bytes


def shown(name: str, keep: int = 120) -> str:
    """A tar name for a one-line message: bytes that are not UTF-8 as backslash escapes (``bad\\xff``),
    a very long one cut in the middle."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if len(text) <= 2 * keep:
        return text
    return f"{text[:keep]}...({len(text) - 2 * keep} more characters)...{text[-keep:]}"


def _as_limit(limit: SizeLimit | int | None) -> SizeLimit:
    if limit is None:
        return stored_limit()
    return limit if isinstance(limit, SizeLimit) else SizeLimit(limit, "the limit given")


class SizeBudget:
    """Counts a layer's entries as unpacking writes them and refuses the one that crosses the limit."""

    def __init__(self, limit: SizeLimit | int | None) -> None:
        self.limit = _as_limit(limit)
        self.total = 0

    def charge(self, member: tarfile.TarInfo, rel: str) -> None:
        # a sparse member's size is its apparent size; a hard link has no data of its own
        self.total += (max(member.size, 0) if member.isreg() else 0) + tarfile.BLOCKSIZE
        if self.total > self.limit.bytes:
            raise InvalidInput(f"layer expands past the size limit of {self.limit}", location=rel)


def _dir_signature(member: tarfile.TarInfo) -> tuple[object, ...]:
    return (member.mode, member.uid, member.gid, int(member.mtime),
            tuple(sorted((k, v) for k, v in member.pax_headers.items() if k.startswith("SCHILY.xattr."))))


class _HashingReader:
    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def open_decompressed(raw: BinaryIO, media_type: str) -> BinaryIO:
    if media_type == LAYER_ZSTD:
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[return-value]
    if media_type in (LAYER_GZIP, DOCKER_LAYER_GZIP):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if media_type == LAYER_TAR:
        return raw
    raise InvalidInput(f"unsupported layer media type {media_type!r}")


def sniff_compression(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(b"\x1f\x8b"):
        return LAYER_GZIP
    if head == b"\x28\xb5\x2f\xfd":
        return LAYER_ZSTD
    return LAYER_TAR


def _clean_name(name: str) -> str:
    if name.startswith("/"):
        raise InvalidInput("absolute path in layer", location=name)
    parts = name.split("/")
    if ".." in parts:
        raise InvalidInput("'..' in layer path", location=name)
    if "" in parts or "." in parts:  # most names have neither: they are clean already
        parts = [p for p in parts if p not in ("", ".")]
        clean = "/".join(parts)
    else:
        clean = name
    if len(clean) > NAME_MAX // 4:  # a shorter one cannot be too long, even in 4-byte characters
        raw = clean.encode("utf-8", "surrogateescape")
        if any(len(part) > NAME_MAX for part in raw.split(b"/")):
            raise InvalidInput(f"a name in the path is longer than {NAME_MAX} bytes", location=name)
        if len(raw) + 2 > PATH_MAX:  # with the leading "/" and the NUL
            raise InvalidInput(f"path is longer than {PATH_MAX - 1} bytes", location=name)
    return clean


class Extractor:
    """Extracts one tar stream into ``root`` with the hostile-input checks.

    Paths are plain strings and a directory found (or made) real is remembered: the extractor only
    ever adds entries, so it stays one, and an entry's parents are not looked up again. Nothing else is
    kept per entry (a layer may have millions): ``root`` starts empty, so what is on disk below it is
    what this layer added, and a repeated entry finds its earlier self there.
    """

    def __init__(
        self,
        root: Path,
        *,
        oci: bool,
        allow_devices: bool = False,
        limit: SizeLimit | int | None = None,
        keep_data: int = -1,
    ) -> None:
        self.root = Path(root)
        self._root = str(root)
        self.oci = oci
        self.allow_devices = allow_devices
        self.budget = SizeBudget(limit)
        self.dir_meta: dict[str, tuple[object, ...]] = {}  # a directory's metadata, to accept identical repeats
        self.dirs: set[str] = {""}  # relative paths known to be real directories
        self.dir_times: list[tuple[str, int | float]] = []
        self.keep_data = keep_data  # a regular file's bytes up to this size are kept as ``data``
        self.data: list[memoryview] | None = None  # the last entry's bytes (views of the read buffer)

    def _parent_ok(self, rel: str) -> str:
        """Create missing parents; refuse any parent that is not a real directory. Returns the path."""
        parent = rel.rpartition("/")[0]
        if parent not in self.dirs:
            current = ""
            for part in parent.split("/"):
                current = f"{current}/{part}" if current else part
                if current in self.dirs:
                    continue
                path = f"{self._root}/{current}"
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    os.mkdir(path, 0o755)
                    self.dirs.add(current)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    raise InvalidInput("entry below a symlinked directory (would escape the root)", location=rel)
                if not stat.S_ISDIR(st.st_mode):
                    raise InvalidInput("entry below a non-directory", location=rel)
                self.dirs.add(current)
        return f"{self._root}/{rel}"

    @staticmethod
    def _meta_fd(fd: int, member: tarfile.TarInfo) -> None:
        """Owner, mode, xattrs and mtime of an open regular file (as ``_meta`` for a path)."""
        os.fchown(fd, member.uid, member.gid)  # first: it clears setuid bits and security.capability
        os.fchmod(fd, member.mode)
        if member.pax_headers:
            for key, value in member.pax_headers.items():
                if key.startswith("SCHILY.xattr."):
                    os.setxattr(fd, key[len("SCHILY.xattr.") :], value.encode("utf-8", "surrogateescape"))
        os.utime(fd, (member.mtime, member.mtime))

    @staticmethod
    def _meta(path: str, member: tarfile.TarInfo, *, link: bool = False, times: bool = True) -> None:
        """Owner, mode (but of a ``link``), xattrs and mtime (unless not ``times``) of ``path``, not
        following a symlink."""
        os.lchown(path, member.uid, member.gid)  # first: it clears setuid bits and security.capability
        if not link:
            os.chmod(path, member.mode)
        for key, value in member.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                os.setxattr(path, key[len("SCHILY.xattr.") :], value.encode("utf-8", "surrogateescape"),
                            follow_symlinks=False)
        if times:
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def _links_to_itself(self, member: tarfile.TarInfo, rel: str) -> bool:
        try:
            return _clean_name(member.linkname) == rel and self._is_file_here(rel)
        except InvalidInput:
            return False  # a bad target: refused as such further on

    def _is_file_here(self, rel: str) -> bool:
        """Whether this layer added a regular file at ``rel`` (its parents are known real dirs)."""
        if rel.rpartition("/")[0] not in self.dirs:
            return False
        try:
            return stat.S_ISREG(os.lstat(f"{self._root}/{rel}").st_mode)
        except OSError:
            return False

    @staticmethod
    def _collides(path: str, rel: str) -> InvalidInput:
        """An entry where this layer already put one: a whiteout, or an earlier entry of that name."""
        try:
            st = os.lstat(path)
        except OSError:
            st = None
        if st is not None and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return InvalidInput("entry collides with an existing path", location=rel)
        return InvalidInput("duplicate entry in layer", location=rel)

    def add(self, member: tarfile.TarInfo, tar: TarStream) -> str:
        """Extract one entry; returns its cleaned path ("" for the root itself, which is skipped)."""
        self.data = None
        rel = _clean_name(member.name)
        if not rel:
            return rel  # the root itself ("./")
        # Tools repeat entries that change nothing: a directory listed again with the same metadata,
        # or (GNU tar with overlapping operands) a file again as a hard link to itself. They are
        # skipped ("" like the root); anything else at the same path conflicts.
        if member.isdir():
            if rel in self.dir_meta:
                if self.dir_meta[rel] == _dir_signature(member):
                    return ""
                raise InvalidInput("duplicate entry in layer", location=rel)
            self.dir_meta[rel] = _dir_signature(member)
        elif member.islnk() and self._links_to_itself(member, rel):
            return ""
        self.budget.charge(member, rel)
        path = self._parent_ok(rel)
        base = rel.rpartition("/")[2]
        if self.oci and base.startswith(WHITEOUT_PREFIX):
            parent = path.rpartition("/")[0]
            if base == OPAQUE_MARKER:
                os.setxattr(parent, OPAQUE_XATTR, b"y")
            else:
                hidden = base[len(WHITEOUT_PREFIX) :]
                if hidden in ("", ".", "..") or hidden.startswith(WHITEOUT_PREFIX):
                    raise InvalidInput("malformed whiteout entry", location=rel)
                target = f"{parent}/{hidden}"
                if os.path.lexists(target):
                    raise InvalidInput("whiteout for an entry the same layer adds", location=rel)
                os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            return rel
        if not (member.isdir() or member.isreg()) and os.path.lexists(path):
            raise self._collides(path, rel)  # before this entry's own checks, as always
        try:
            self._create(member, tar, rel, path)
        except FileExistsError:  # directories and files find out by trying (one lookup less)
            raise self._collides(path, rel) from None
        return rel

    def _create(self, member: tarfile.TarInfo, tar: TarStream, rel: str, path: str) -> None:
        """Create the entry; FileExistsError when something is already at ``path``."""
        if member.isdir():
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                st = os.lstat(path)
                if not stat.S_ISDIR(st.st_mode):
                    raise
            self.dirs.add(rel)
            self._meta(path, member, link=True, times=False)  # its entries change it: set in finish()
            os.chmod(path, member.mode)
            self.dir_times.append((path, member.mtime))
        elif member.isreg():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            if member.size == 0:  # many are: no file object for them
                try:
                    self._meta_fd(fd, member)
                finally:
                    os.close(fd)
                self.data = [] if self.keep_data >= 0 else None
                return
            try:
                data = tar.copy_data(member, fd, keep=self.keep_data)
                self._meta_fd(fd, member)
            finally:
                os.close(fd)
            self.data = data
        elif member.issym():
            target = member.linkname
            if symlink_escapes(rel, target):
                raise InvalidInput(f"symlink target {target!r} escapes the root", location=rel)
            os.symlink(target, path)
            self._meta(path, member, link=True)
        elif member.islnk():
            if member.linkname.startswith("/") or ".." in PurePosixPath(member.linkname).parts:
                raise InvalidInput(f"hardlink target {member.linkname!r} escapes the root", location=rel)
            target_rel = _clean_name(member.linkname)
            if target_rel == rel or not self._is_file_here(target_rel):
                raise InvalidInput(
                    f"hardlink target {member.linkname!r} is not a regular file of this layer", location=rel
                )
            os.link(f"{self._root}/{target_rel}", path, follow_symlinks=False)
        elif member.isfifo():
            os.mkfifo(path, 0o600)
            self._meta(path, member)
        elif member.ischr() or member.isblk():
            if not self.allow_devices:
                raise InvalidInput("device node in layer (not allowed)", location=rel)
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
            self._meta(path, member)
        else:
            raise InvalidInput(f"unsupported tar entry type {member.type!r}", location=rel)

    def finish(self) -> None:
        for path, mtime in reversed(self.dir_times):
            os.utime(path, (mtime, mtime), follow_symlinks=False)


# an entry in place: its cleaned path, its member, and a regular file's bytes when kept (see ``KEEP_DATA``)
EntryDone = Callable[[str, tarfile.TarInfo, list[memoryview] | None], None]
KEEP_DATA = 4 << 20  # bytes of a regular file handed to ``on_entry`` at most (a larger one: None)


def entry_error(label: str, name: str, error: InvalidInput | OSError) -> InvalidInput:
    """One line naming the layer (``label``, e.g. "layer sha256:...") and the entry, never a path of
    kiln's own (the scratch dir)."""
    if isinstance(error, InvalidInput):
        return InvalidInput(error.message, location=f"{label}, entry {shown(error.location or name)}")
    return InvalidInput(f"cannot create the entry: {error.strerror or error}", location=f"{label}, entry {shown(name)}")


def extract_stream(
    stream: BinaryIO,
    dest: Path,
    *,
    oci: bool,
    label: str = "layer",
    allow_devices: bool = False,
    limit: SizeLimit | int | None = None,
    on_entry: EntryDone | None = None,
) -> None:
    """Extract a tar stream into ``dest``; ``on_entry`` hears of each entry once it is in place (with
    the bytes of a regular file up to ``KEEP_DATA``: what was just written to it). Refusals name the
    layer by ``label``."""
    extractor = Extractor(
        dest, oci=oci, allow_devices=allow_devices, limit=limit, keep_data=KEEP_DATA if on_entry else -1
    )
    with open_stream(stream) as tar:
        for member in members(tar):
            try:
                rel = extractor.add(member, tar)
            except (InvalidInput, OSError) as error:
                raise entry_error(label, member.name, error) from None
            if on_entry is not None and rel:
                on_entry(rel, member, extractor.data)
    extractor.finish()


def extract_file(
    path: Path,
    dest: Path,
    *,
    oci: bool = False,
    kind: str = "layer",
    allow_devices: bool = False,
    limit: SizeLimit | int | None = None,
    on_entry: EntryDone | None = None,
) -> None:
    """Extract a (possibly compressed) tar file; used for rootfs tarballs and (``kind`` "archive")
    oci-archives."""
    label = f"{kind} {path}"
    try:
        with open(path, "rb") as raw:
            extract_stream(
                open_decompressed(raw, sniff_compression(path)),
                dest,
                oci=oci,
                label=label,
                allow_devices=allow_devices,
                limit=limit,
                on_entry=on_entry,
            )
    except TAR_ERRORS as error:
        raise InvalidInput(f"not a valid tar: {error}", location=label) from None


def layer_cache_root() -> Path:
    root = cache_dir() / "layers"
    root.mkdir(parents=True, exist_ok=True)
    return root


def unpack_layer(
    blobs: BlobStore,
    digest: str,
    media_type: str,
    *,
    limit: SizeLimit | int | None = None,
    allow_devices: bool = False,
) -> Path:
    """The unpacked dir of a layer blob, unpacking (and verifying the digest) on first use.

    Imports vet layers with the user's ``allow_devices``; layers already in the store were vetted
    (or captured by kiln), so ``layer_dirs`` unpacks them with devices allowed.
    """
    source = blobs.path(digest)  # raises for a missing or quarantined blob, even when cached
    final = layer_cache_root() / hex_of(digest)
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".tmp-{hex_of(digest)[:12]}-"))
    try:
        try:
            with open(source, "rb") as raw:
                reader = _HashingReader(raw)  # type: ignore[arg-type]
                stream = open_decompressed(reader, media_type)  # type: ignore[arg-type]
                extract_stream(stream, tmp, oci=True, label=f"layer {digest}", limit=limit, allow_devices=allow_devices)
                reader.drain()
            actual = "sha256:" + reader.hash.hexdigest()
        except TAR_ERRORS as error:
            if blobs.hash_file(digest) == digest:
                raise InvalidInput(f"layer blob {digest} is not a valid tar: {error}") from error
            actual = "corrupt"
        if actual != digest:
            blobs.quarantine(digest)
            raise BlobQuarantined(f"layer blob {digest} is corrupt; it was moved to quarantine")
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
