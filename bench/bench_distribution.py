"""Distribution copies between region stores, measured side by side in one run.

20 blobs of 8 MiB (160 MiB) moved into another region's store: hard-linked (same filesystem, each
blob still hashed), copied (another filesystem, hashed while written), again when the target holds
them all (incremental: nothing moves), against ``cp`` of the same files to the other filesystem.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

BLOBS, SIZE = 20, 8 << 20


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run() -> dict[str, float | int]:
    from kiln.store.blobs import BlobStore
    from kiln.store.copying import transfer_blobs

    disk = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="kiln-bench-dist-"))
    ram = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="kiln-bench-dist-"))
    try:
        source = BlobStore(disk / "source")
        digests = [source.put_bytes(os.urandom(SIZE)) for _ in range(BLOBS)]
        linked = BlobStore(disk / "linked")
        copied = BlobStore(ram / "copied")
        (ram / "cp").mkdir()
        reference = _timed(lambda: subprocess.run(
            ["cp", *[str(source.path(d)) for d in digests], str(ram / "cp")], check=True))
        link_time = _timed(lambda: transfer_blobs(source, linked, digests))
        copy_time = _timed(lambda: transfer_blobs(source, copied, digests))
        again_time = _timed(lambda: transfer_blobs(source, copied, digests))
        return {
            "bytes": BLOBS * SIZE,
            "cp_seconds": round(reference, 3),
            "linked_seconds": round(link_time, 3),
            "copied_seconds": round(copy_time, 3),
            "incremental_seconds": round(again_time, 4),
            "linked_vs_cp": round(link_time / reference, 2),
            "copied_vs_cp": round(copy_time / reference, 2),
        }
    finally:
        shutil.rmtree(disk, ignore_errors=True)
        shutil.rmtree(ram, ignore_errors=True)
