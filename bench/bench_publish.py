"""Publishing to AWS (moto's server on loopback), measured side by side in one run.

(a) upload throughput: kiln's block upload (read, skip zeros, SHA-256, 8 threads, progress recorded in
    the database) vs a plain PutSnapshotBlock loop over the same file (read, skip zeros, SHA-256, one
    request after another), both into fresh snapshots of the same ~1 GiB disk (goal: ratio >= 0.9);
(b) blocks sent for a child image that rewrites 1 MiB inside one file of that image (goal <= 4), for a
    child that adds a new 1 MiB file, and for one that deletes a 4 MiB file (the child's file system is
    its parent's with the child's layer applied in place). Goal for a change of N bytes: N / 512 KiB,
    +1 when N does not start on a block boundary, +4 for metadata (superblock and group descriptors;
    bitmaps and inode table; the directory's block; one more when the directory's inode lies apart):
    <= 7 for 1 MiB added, <= 13 for 4 MiB deleted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.moto_server import start_moto

REAL_FILES = 200 << 20
TREE = 600 << 20  # with the export's slack (and 4 KiB a file): a disk just under 1 GiB
CHUNK = 4 << 20
MIB = 1 << 20


def _reset(endpoint: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()


def _tree(dest: Path) -> Path:
    from bench.bench_store import _build_tree

    size = _build_tree(dest, REAL_FILES)
    data = dest / "data"
    data.mkdir()
    index = 0
    while size < TREE:
        (data / f"chunk-{index:04d}.bin").write_bytes(os.urandom(CHUNK))
        size += CHUNK
        index += 1
    return dest


def _raw_loop(client: Any, disk: Path) -> int:
    from kiln.aws.blocks import BLOCK_SIZE, ZERO_BLOCK, b64, digest

    snapshot = client.start_snapshot(VolumeSize=1)["SnapshotId"]
    sent = 0
    with open(disk, "rb") as handle:
        index = 0
        while data := handle.read(BLOCK_SIZE):
            if data != ZERO_BLOCK:
                client.put_snapshot_block(SnapshotId=snapshot, BlockIndex=index, BlockData=data,
                                          DataLength=len(data), Checksum=b64(digest(data)), ChecksumAlgorithm="SHA256")
                sent += 1
            index += 1
    return sent


def _kiln_upload(client: Any, disk: Path, image_id: str) -> int:
    from kiln.aws.ebs_direct import EbsDirect
    from kiln.aws.upload import UploadPlan, upload
    from kiln.services.publishing import records

    ebs = EbsDirect(client)
    place = records.Place("aws", "us-east-1", "123456789012", f"bench-{time.monotonic()}")
    pub = records.create(image_id, "local", place, parent_snapshot_id=None, volume_size=1,
                         disk_size=disk.stat().st_size, disk_identity="", disk_epoch=0)
    snapshot = ebs.start_snapshot(volume_size=1, description="bench", tags={}, client_token=pub.client_token)
    result = upload(ebs, disk, UploadPlan(snapshot), workers=8,
                    record=lambda entries: records.record_blocks(pub.id, entries))
    return result.sent


def _child(base: str, base_tree: Path, work: Path, name: str, change: str) -> str:
    from kiln.store import api

    upper = work / f"upper-{name}"
    (upper / "data").mkdir(parents=True)
    if change == "rewrite":
        original = base_tree / "data" / "chunk-0007.bin"
        content = bytearray(original.read_bytes())
        content[MIB + 12345 : 2 * MIB + 12345] = os.urandom(MIB)  # 1 MiB, not block-aligned
        (upper / "data" / original.name).write_bytes(bytes(content))
    elif change == "add":
        (upper / "data" / "new.bin").write_bytes(os.urandom(MIB))
    else:
        os.mknod(upper / "data" / "chunk-0003.bin", 0o600 | 0o020000, 0)  # a whiteout
    st = (base_tree / "data").stat()
    os.utime(upper / "data", ns=(st.st_atime_ns, st.st_mtime_ns))  # as overlayfs copy-up keeps it
    return api.create_image_from_upper(base, upper, name=name)


def run() -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    work = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    os.environ.update(KILN_HOME=str(work / "home"), AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    from kiln.db.engine import reset_engines
    from kiln.services.publishing.aws import publish_image
    from kiln.services.startup import install
    from kiln.store import api

    install()
    reset_engines()
    moto, endpoint = start_moto()
    try:
        tree = _tree(work / "tree")
        base = api.import_rootfs(tree, name="bench-base")
        disk = work / "disk.raw"
        api.raw_disk(base, disk)
        client = boto3.client("ebs", endpoint_url=endpoint, region_name="us-east-1",
                              config=Config(retries={"total_max_attempts": 1}, max_pool_connections=16))
        kiln_times, loop_times, blocks = [], [], 0
        for _ in range(2):
            for label, times in (("kiln", kiln_times), ("loop", loop_times)):
                _reset(endpoint)
                start = time.perf_counter()
                blocks = _kiln_upload(client, disk, base) if label == "kiln" else _raw_loop(client, disk)
                times.append(time.perf_counter() - start)
        mib = blocks * 512 * 1024 / MIB
        _reset(endpoint)
        phases: list[tuple[str, float]] = []
        start = time.perf_counter()
        first = publish_image(base, region="us-east-1", endpoint_url=endpoint,
                              note=lambda text: phases.append((text.split()[0], time.perf_counter())))
        publish_s = time.perf_counter() - start
        marks = [start] + [at for _, at in phases] + [start + publish_s]
        spans = {name: round(marks[i + 2] - marks[i + 1], 1) for i, (name, _) in enumerate(phases)}
        rewrite = publish_image(_child(base, tree, work, "bench-rewrite", "rewrite"), region="us-east-1",
                                endpoint_url=endpoint)
        added = publish_image(_child(base, tree, work, "bench-added", "add"), region="us-east-1",
                              endpoint_url=endpoint)
        deleted = publish_image(_child(base, tree, work, "bench-deleted", "delete"), region="us-east-1",
                                endpoint_url=endpoint)
        return {
            "disk_mib": round(disk.stat().st_size / MIB),
            "blocks_non_zero": blocks,
            "upload_kiln_mib_s": round(mib / min(kiln_times), 1),
            "upload_loop_mib_s": round(mib / min(loop_times), 1),
            "upload_ratio": round(min(loop_times) / min(kiln_times), 2),
            "upload_goal": 0.9,
            "publish_whole_s": round(publish_s, 1),
            "publish_disk_export_s": spans.get("writing"),
            "publish_upload_s": spans.get("uploading"),
            "publish_wait_register_s": spans.get("waiting"),
            "publish_first_blocks_sent": first["BlocksSent"],
            "child_rewrite_1mib_blocks_sent": rewrite["BlocksSent"],
            "child_rewrite_goal": 4,
            "child_new_1mib_file_blocks_sent": added["BlocksSent"],
            "child_new_1mib_file_goal": 7,
            "child_deleted_4mib_file_blocks_sent": deleted["BlocksSent"],
            "child_deleted_4mib_file_goal": 13,
        }
    finally:
        moto.kill()
        moto.wait()
        reset_engines()
        shutil.rmtree(work, ignore_errors=True)
