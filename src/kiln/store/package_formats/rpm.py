"""RPM's sqlite database (``rpmdb.sqlite``): the ``Packages`` table holds one header blob per package.

A header blob (the on-disk header without its 8-byte magic) is: the index entry count ``il`` and the
data store length ``dl`` (big-endian uint32), ``il`` 16-byte entries (tag, type, offset, count), then
the data store. Strings are NUL-terminated at their offset; INT32 values are big-endian. The database
is opened read-only and immutable, so a file in a layer dir is never written; one with a non-empty
``-wal`` beside it is read from a scratch copy.
"""

from __future__ import annotations

import shutil
import sqlite3
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path

from kiln.errors import InvalidInput
from kiln.store.package_formats import RawPackage

TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH, TAG_SOURCERPM = 1000, 1001, 1002, 1003, 1022, 1044
TYPE_INT32, TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING = 4, 6, 8, 9
STRING_TYPES = (TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING)
WANTED = (TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH, TAG_SOURCERPM)
MAX_ENTRIES = 1 << 16  # rpm's own header sanity limits
MAX_DATA = 256 << 20


def header_tags(blob: bytes, where: str) -> dict[int, str | int]:
    """The wanted tags of one header blob; ``where`` names it in errors."""
    if len(blob) < 8:
        raise InvalidInput("RPM header blob shorter than its 8-byte preamble", location=where)
    count, data_length = struct.unpack_from(">II", blob)
    store = 8 + 16 * count
    if not 0 < count <= MAX_ENTRIES or data_length > MAX_DATA or store + data_length > len(blob):
        raise InvalidInput(f"RPM header blob is not a header ({count} entries, {data_length} data bytes, "
                           f"{len(blob)} bytes in all)", location=where)
    data = memoryview(blob)[store:store + data_length]
    tags: dict[int, str | int] = {}
    for index in range(count):
        tag, kind, offset, items = struct.unpack_from(">iIiI", blob, 8 + 16 * index)
        if tag not in WANTED:
            continue
        if not 0 <= offset < data_length:
            raise InvalidInput(f"RPM header tag {tag} points outside the data store", location=where)
        if kind == TYPE_INT32 and items >= 1 and offset + 4 <= data_length:
            tags[tag] = struct.unpack_from(">i", data, offset)[0]
        elif kind in STRING_TYPES:
            end = bytes(data[offset:]).find(b"\0")
            if end < 0:
                raise InvalidInput(f"RPM header tag {tag}: string without its terminating NUL", location=where)
            tags[tag] = bytes(data[offset:offset + end]).decode("utf-8", "replace")
        else:
            raise InvalidInput(f"RPM header tag {tag} has unexpected type {kind}", location=where)
    return tags


def split_nvr(filename: str) -> tuple[str, str]:
    """``bash-5.1.8-6.el9.src.rpm`` -> (``bash``, ``5.1.8-6.el9``)."""
    stem = filename.removesuffix(".rpm")
    stem = stem.rsplit(".", 1)[0] if stem.endswith((".src", ".nosrc")) else stem
    name, _, release = stem.rpartition("-")
    name, _, version = name.rpartition("-")
    if not name or not version or not release:
        return "", ""
    return name, f"{version}-{release}"


def package_of(tags: dict[int, str | int], where: str) -> RawPackage | None:
    """The package a header describes; None for rpm's pseudo-packages (``gpg-pubkey``: no arch)."""
    name, version, release = tags.get(TAG_NAME), tags.get(TAG_VERSION), tags.get(TAG_RELEASE)
    if not isinstance(name, str) or not isinstance(version, str) or not isinstance(release, str):
        raise InvalidInput("RPM header without NAME, VERSION and RELEASE", location=where)
    arch = tags.get(TAG_ARCH)
    if name == "gpg-pubkey" or not isinstance(arch, str):
        return None
    epoch_value = tags.get(TAG_EPOCH)
    epoch = str(epoch_value) if isinstance(epoch_value, int) else ""
    prefix = f"{epoch}:" if epoch else ""
    sourcerpm = tags.get(TAG_SOURCERPM)
    source_name, source_evr = split_nvr(sourcerpm) if isinstance(sourcerpm, str) else ("", "")
    if not source_name:
        source_name, source_evr = name, f"{version}-{release}"
    return RawPackage(name, f"{prefix}{version}-{release}", arch, source_name, f"{prefix}{source_evr}",
                      epoch=epoch, upstream=sourcerpm if isinstance(sourcerpm, str) else "")


def _rows(path: Path, location: str, wal: Path | None) -> list[tuple[int, object]]:
    with tempfile.TemporaryDirectory(prefix="kiln-rpmdb-") as scratch:
        if wal is not None:
            # a write-ahead log still holding pages: read it in a scratch copy (sqlite writes its -shm
            # beside the database, never in a layer dir)
            shutil.copyfile(path, Path(scratch) / "rpmdb.sqlite")
            shutil.copyfile(wal, Path(scratch) / "rpmdb.sqlite-wal")
            uri = f"file:{Path(scratch) / 'rpmdb.sqlite'}?mode=ro"
        else:
            uri = f"file:{path}?mode=ro&immutable=1"
        try:
            db = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as error:
            raise InvalidInput(f"cannot open the RPM database: {error}", location=location) from None
        try:
            return db.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
        except sqlite3.Error as error:
            raise InvalidInput(f"not an RPM sqlite database: {error}", location=location) from None
        finally:
            db.close()


def parse_sqlite(path: Path, location: str, wal: Path | None = None) -> list[RawPackage]:
    """The packages of an ``rpmdb.sqlite`` file (``location`` is its path in the image; ``wal`` its
    ``-wal`` file when the image has a non-empty one)."""
    blobs = []
    for hnum, blob in _rows(path, location, wal):
        if not isinstance(blob, bytes):
            raise InvalidInput("Packages row without a header blob", location=f"{location}: Packages#{hnum}")
        blobs.append((f"{location}: Packages#{hnum}", blob))
    return _packages(blobs)


def parse_bdb(data: bytes, location: str) -> list[RawPackage]:
    """The packages of a BerkeleyDB ``Packages`` file (``location``: its path in the image)."""
    from kiln.store.package_formats.rpm_bdb import header_blobs

    return _packages((f"{location}: header #{number}", blob) for number, blob in header_blobs(data, location))


def parse_ndb(data: bytes, location: str) -> list[RawPackage]:
    """The packages of an ndb ``Packages.db`` file (``location``: its path in the image)."""
    from kiln.store.package_formats.rpm_ndb import header_blobs

    return _packages((f"{location}: package #{number}", blob) for number, blob in header_blobs(data, location))


def _packages(blobs: Iterable[tuple[str, bytes]]) -> list[RawPackage]:
    """The packages of header ``blobs``, each named by where it was read (rpm's own ``gpg-pubkey``
    pseudo-packages and the like are left out by ``package_of``)."""
    found = []
    for where, blob in blobs:
        package = package_of(header_tags(blob, where), where)
        if package is not None:
            found.append(package)
    return found
