"""Files made whole or not at all: built under a name of their own, then renamed into place.

A reader never sees half a file, and a process killed mid-way leaves at most a ``.partial`` file
named by its pid (two processes making the same file never write each other's). These are for
files that can be made again (answers kept, templates, caches): nothing here fsyncs. The store's
records, which must survive a crash of the host, use ``kiln.store.layout.write_file_atomic``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def partial_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}.partial")


@contextlib.contextmanager
def staged_path(path: Path) -> Iterator[Path]:
    """A path beside ``path`` to make the file at (by any means: a command, a write); renamed over
    ``path`` when the block ends normally, removed when it raises."""
    partial = partial_path(path)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        with contextlib.suppress(OSError):  # the folder itself may be what failed
            if partial.is_dir() and not partial.is_symlink():
                shutil.rmtree(partial)
            else:
                partial.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    """``data`` as the file ``path``, with ``mode`` from its first byte on (a secret is never
    readable by others, not even while it is written)."""
    content = data.encode() if isinstance(data, str) else data
    with staged_path(path) as partial:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # whatever the umask left off
            handle.write(content)
