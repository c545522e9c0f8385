"""A just-captured tree becomes its layer's unpacked dir, instead of the blob being unpacked again.

Importing a rootfs tarball extracts it once (vetting every entry) and captures the tree; a build
captures its instance's root volume. Unpacking the resulting blob would write the very same tree a
second time (a Debian minbase: 8,700 entries, 10 s and more on a churned disk). When the capture's
record says the tree is what unpacking would give, once corrected where capture normalises (see
``kiln.store.fidelity``), the blob is re-read and checked against its digest, and the tree is moved
into the layer cache, corrected there, and renamed to the digest's name. Otherwise nothing happens
and the blob is unpacked and vetted on first use, as any layer is.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from kiln.errors import NotFound
from kiln.store.blobs import BlobStore, hex_of
from kiln.store.fidelity import CaptureRecord
from kiln.store.layers import OVERLAY_XATTR_PREFIXES
from kiln.store.unpack import OPAQUE_XATTR, layer_cache_root, size_limit


def adopt(blobs: BlobStore, digest: str, tree: Path, record: CaptureRecord) -> Path | None:
    """Make ``tree``, just captured as blob ``digest`` with ``record``, that blob's unpacked dir.

    ``tree`` must be the caller's to give away (it would be deleted next). Returns the layer's
    cache dir, or None when the tree cannot stand in for it: the tree is then left alone, unless
    it failed midway, when it is gone.
    """
    if record.refusal is not None or record.unpacked_bytes > size_limit():
        return None
    final = layer_cache_root() / hex_of(digest)
    if final.is_dir():
        return final
    try:
        # the capture hashed these bytes as it wrote them: unchanged since, they need no second read
        if not blobs.verified_unchanged(digest) and blobs.hash_file(digest) != digest:
            return None  # unpacking it on first use quarantines it, as for any corrupt blob
    except NotFound:
        return None
    staging = final.parent / f".tmp-{final.name[:12]}-adopted-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(tree, staging)
    except OSError:
        return None  # e.g. another file system
    try:
        conform(staging, record)
        os.rename(staging, final)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        return final if final.is_dir() else None  # another process may have unpacked it meanwhile
    return final


def conform(root: Path, record: CaptureRecord) -> None:
    """Correct ``root`` in place to what unpacking its captured blob gives."""
    _drop_overlay_xattrs(root)
    os.chmod(root, 0o755)
    if os.lstat(root).st_uid != os.geteuid() or os.lstat(root).st_gid != os.getegid():
        os.chown(root, os.geteuid(), os.getegid())
    for relative, opaque in record.overlay_xattrs:
        path = root / relative
        _drop_overlay_xattrs(path)
        if opaque:
            os.setxattr(path, OPAQUE_XATTR, b"y", follow_symlinks=False)
    for relative, mtime in record.mtimes:
        nanoseconds = mtime * 1_000_000_000
        os.utime(root / relative, ns=(nanoseconds, nanoseconds), follow_symlinks=False)


def _drop_overlay_xattrs(path: Path) -> None:
    for name in os.listxattr(path, follow_symlinks=False):
        if name.startswith(OVERLAY_XATTR_PREFIXES):
            os.removexattr(path, name, follow_symlinks=False)
