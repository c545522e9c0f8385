"""Whether a captured tree can stand in for the unpacked dir of the blob captured from it.

Unpacking a layer blob that kiln just captured from a directory rebuilds that directory, entry for
entry, except where capture normalises: mtimes (whole seconds, clamped to SOURCE_DATE_EPOCH),
overlayfs xattrs (dropped, an opaque dir's marker coming back as ``trusted.overlay.opaque=y``) and
sockets (skipped). A :class:`CaptureRecord` filled during capture lists those spots, so the tree
can be corrected in place and used as the layer's unpacked dir (see ``kiln.store.adopt``), and it
notes anything that would make unpacking refuse or change the layer — a name with the whiteout
prefix, a symlink leaving the root, a file changing while read, the size limit — in which case the
tree is not used and the blob is unpacked (and vetted) on first use, as for any layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

TAR_BLOCK = 512


def symlink_escapes(rel: str, target: str) -> bool:
    """True when relative symlink ``target`` at ``rel`` (a path inside the root) resolves above it."""
    if target.startswith("/"):
        return False
    depth = 0
    for part in PurePosixPath(rel).parent.joinpath(target).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False


@dataclass
class CaptureRecord:
    """What capture saw that unpacking its blob would not reproduce in place."""

    unpacked_bytes: int = 0  # what unpacking counts against the layer size limit
    refusal: str | None = None  # why the tree cannot stand in for the unpacked blob
    mtimes: list[tuple[str, int]] = field(default_factory=list)  # (relative path, mtime unpack sets)
    overlay_xattrs: list[tuple[str, bool]] = field(default_factory=list)  # (relative path, opaque)

    def refuse(self, reason: str) -> None:
        if self.refusal is None:
            self.refusal = reason

    def entry(self, size: int = 0) -> None:
        """One tar entry as unpacking counts it (size plus one header block)."""
        self.unpacked_bytes += max(size, 0) + TAR_BLOCK
