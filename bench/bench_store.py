"""Image store benchmarks, measured side by side in one run.

(a) layer capture of a ~70 MB tree of real files vs ``tar -c | zstd -T2`` of the same dir (goal <= 1.5);
(c) ten successive images each changing 1 MB of a 200 MB base: store size / (base + 10 MB) (goal <= 1.1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.timing import best_of

TARGET_TREE = 70 << 20


def _build_tree(dest: Path, limit: int) -> int:
    """Copy real files (Python's stdlib, then /usr/share) until ``limit`` bytes."""
    total = 0
    sources = [Path(sys.base_prefix) / "lib", Path("/usr/lib/python3"), Path("/usr/share")]
    for source in sources:
        for root, dirs, files in os.walk(source):
            dirs.sort()
            for name in sorted(files):
                src = Path(root) / name
                if src.is_symlink() or not src.is_file() or src.stat().st_size > limit - total:
                    continue
                target = dest / src.relative_to("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copy2(src, target)
                except OSError:
                    continue
                total += target.stat().st_size
                if total >= limit:
                    return total
    return total


def bench_capture(work: Path) -> dict[str, float]:
    from kiln.store.blobs import BlobStore
    from kiln.store.layers import capture

    tree = work / "tree"
    size = _build_tree(tree, TARGET_TREE)
    store = BlobStore(work / "store")
    ours = best_of(lambda: capture(tree, store))[0]
    ref_out = work / "ref.tar.zst"
    reference = best_of(lambda: subprocess.run(
        f"tar -C {tree} -c . | zstd -q -T2 -3 -c > {ref_out}", shell=True, check=True))[0]
    layer = capture(tree, store)
    return {
        "capture_tree_mb": round(size / 1e6, 1),
        "capture_kiln_s": round(ours, 3),
        "capture_tar_zstd_T2_s": round(reference, 3),
        "capture_ratio": round(ours / reference, 2),
        "capture_goal": 1.5,
        "capture_blob_mb": round(layer.size / 1e6, 1),
        "reference_blob_mb": round(ref_out.stat().st_size / 1e6, 1),
    }


def bench_incremental(work: Path) -> dict[str, float]:
    os.environ["KILN_HOME"] = str(work / "home")
    from kiln.db.engine import reset_engines
    from kiln.store import api

    reset_engines()
    base_dir = work / "base"
    (base_dir / "data").mkdir(parents=True)
    for i in range(200):  # 200 MB of incompressible data
        (base_dir / "data" / f"f{i:03d}").write_bytes(os.urandom(1 << 20))
    ami = api.import_rootfs(base_dir, name="bench-base")
    base_bytes = sum(layer.size for layer in api.image_layers(ami))
    for step in range(10):
        upper = work / f"upper{step}"
        (upper / "data").mkdir(parents=True)
        (upper / "data" / f"f{step:03d}").write_bytes(os.urandom(1 << 20))
        ami = api.create_image_from_upper(ami, upper, name=f"bench-{step}")
    blobs = work / "home" / "regions" / "local" / "blobs" / "sha256"
    store_bytes = sum(p.stat().st_size for p in blobs.iterdir())
    ideal = base_bytes + 10 * (1 << 20)
    return {
        "incremental_store_mb": round(store_bytes / 1e6, 1),
        "incremental_ideal_mb": round(ideal / 1e6, 1),
        "incremental_ratio": round(store_bytes / ideal, 3),
        "incremental_goal": 1.1,
    }


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kiln-bench-store-") as tmp:
        work = Path(tmp)
        (work / "a").mkdir()
        (work / "c").mkdir()
        return {**bench_capture(work / "a"), **bench_incremental(work / "c")}


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
