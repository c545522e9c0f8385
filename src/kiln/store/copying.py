"""Blobs from one region's store into another's, for CopyImage: once per region, incremental, linked
where the filesystem allows.

A blob the target region already holds is not touched again (only its mtime refreshed, as any writer
about to reference it does). Any other blob is hard-linked into the target's ``tmp/`` when both stores
share a filesystem (blobs are immutable, so the link costs no bytes), else copied; either way its
content is hashed against its digest before it is renamed into ``blobs/`` — a corrupt source blob
never enters another region. The one exception: a linked blob this process hashed as it wrote it,
whose file is unchanged since (``BlobStore.verified_unchanged``): the link is that very file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kiln.store.blobs import CHUNK, BlobQuarantined, BlobStore, batched_dir_sync

# link(2) refuses across filesystems (EXDEV) and on filesystems or files it may not link (EPERM,
# EMLINK, ENOTSUP): the blob is then copied.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


@dataclass
class BlobTransfer:
    """What copying a set of blobs did: each digest is in exactly one list."""

    linked: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    bytes_moved: int = 0  # bytes of the linked and copied blobs

    @property
    def transferred(self) -> list[str]:
        return self.linked + self.copied

    def as_dict(self) -> dict[str, int]:
        return {"blobsLinked": len(self.linked), "blobsCopied": len(self.copied),
                "blobsAlreadyPresent": len(self.present), "bytesTransferred": self.bytes_moved}


def _link_into_tmp(source: Path, dest: BlobStore) -> Path | None:
    dest.tmp_dir.mkdir(parents=True, exist_ok=True)
    name = dest.tmp_dir / f"link-{secrets.token_hex(8)}"  # link(2) makes the name: it must not exist yet
    try:
        os.link(source, name)
    except OSError as error:
        if error.errno in _NO_LINK:
            return None
        raise
    return name


def transfer_blobs(source: BlobStore, dest: BlobStore, digests: Iterable[str]) -> BlobTransfer:
    """Make every blob of ``digests`` present in ``dest``, verified (see the module's docstring)."""
    done = BlobTransfer()
    with batched_dir_sync():  # blobs/ fsynced once for all, before the caller registers anything
        for digest in dict.fromkeys(digests):  # a digest listed twice is transferred once
            _transfer_one(source, dest, digest, done)
    return done


def _transfer_one(source: BlobStore, dest: BlobStore, digest: str, done: BlobTransfer) -> None:
    if dest.exists(digest):
        dest.refresh(digest)
        done.present.append(digest)
        return
    origin = source.path(digest)
    linked = _link_into_tmp(origin, dest) if source.root != dest.root else None
    if linked is not None:
        try:
            # a link is the source's very file: unchanged since this process hashed it as it
            # wrote it, it needs no second read (BlobStore.verified_unchanged)
            if not source.verified_unchanged(digest) and _hash(linked) != digest:
                source.quarantine(digest)
                raise _corrupt(digest)
            dest.install(linked, digest)
        finally:
            linked.unlink(missing_ok=True)
        done.linked.append(digest)
    else:
        with open(origin, "rb") as handle:
            dest.put_file(handle, expected=digest)
        done.copied.append(digest)
    done.bytes_moved += dest.size(digest)


def _hash(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def _corrupt(digest: str) -> BlobQuarantined:
    return BlobQuarantined(f"blob {digest} is corrupt in the source region; it was quarantined, nothing copied")
