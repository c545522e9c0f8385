"""Writing a disk into a pending EBS snapshot: each block compared with what the snapshot already
holds, the differing ones sent by a bounded pool of threads.

What the snapshot "already holds" is its parent's blocks (``ParentSnapshotId``) overlaid with the
blocks an earlier, interrupted run wrote to it. A block is sent when its digest differs from that; a
block that is zero here but not there is written as zeros. Finished blocks are handed to ``record``
in batches from the calling thread, so a killed upload loses at most the batch in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from kiln.aws.blocks import BLOCK_SIZE, ZERO_BLOCK, ZERO_DIGEST, block_count, digest, disk_blocks
from kiln.aws.ebs_direct import EbsDirect

# (index, sha256 of the block's content, written to this snapshot)
BlockRecord = tuple[int, bytes, bool]
Record = Callable[[list[BlockRecord]], None]
Progress = Callable[[int], None]


@dataclass
class UploadPlan:
    snapshot_id: str
    parent: Mapping[int, bytes] = field(default_factory=dict)  # the parent snapshot's non-zero blocks
    written: Mapping[int, bytes] = field(default_factory=dict)  # blocks earlier runs wrote to this snapshot


@dataclass
class UploadResult:
    blocks: int = 0  # blocks of the disk
    sent: int = 0  # blocks written by this run
    bytes_sent: int = 0
    zero: int = 0  # all-zero blocks not sent
    unchanged: int = 0  # blocks the parent already holds
    already_written: int = 0  # blocks an earlier run wrote
    written: dict[int, bytes] = field(default_factory=dict)  # every block of the snapshot: index -> sha256

    @property
    def skipped(self) -> int:
        return self.blocks - self.sent


def _holds(plan: UploadPlan, index: int) -> bytes:
    """The digest of what the pending snapshot reads at ``index`` now."""
    return plan.written.get(index) or plan.parent.get(index) or ZERO_DIGEST


def upload(ebs: EbsDirect, disk: Path, plan: UploadPlan, *, workers: int, record: Record,
           progress: Progress | None = None, batch_seconds: float = 0.5) -> UploadResult:
    size = disk.stat().st_size
    result = UploadResult(blocks=block_count(size), written=dict(plan.written))
    pending: dict[Future[None], BlockRecord] = {}
    finished: list[BlockRecord] = []
    last_record = time.monotonic()
    nonzero: set[int] = set()
    zeroed = 0  # zero blocks written over non-zero ones

    def collect(done: set[Future[None]]) -> None:
        for future in done:
            entry = pending.pop(future)
            future.result()  # a failure (after retries) ends the upload
            finished.append(entry)
            result.sent += 1
            result.bytes_sent += BLOCK_SIZE
            result.written[entry[0]] = entry[1]
            if progress:
                progress(BLOCK_SIZE)

    def flush(force: bool = False) -> None:
        nonlocal last_record
        if finished and (force or time.monotonic() - last_record >= batch_seconds):
            record(list(finished))
            finished.clear()
            last_record = time.monotonic()

    def send(pool: ThreadPoolExecutor, index: int, data: bytes, sha: bytes) -> None:
        while len(pending) >= 2 * workers:  # bounded read-ahead: memory stays at ~2 blocks a thread
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            collect(done)
            flush()
        future = pool.submit(ebs.put_block, plan.snapshot_id, index, data, sha)
        pending[future] = (index, sha, True)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ebs-put")
    try:
        for index, data in disk_blocks(disk):
            nonzero.add(index)
            sha = digest(data)
            if sha == _holds(plan, index):
                if index in plan.written:
                    result.already_written += 1
                else:
                    result.unchanged += 1
                    finished.append((index, sha, False))
                if progress:
                    progress(BLOCK_SIZE)
                continue
            send(pool, index, data, sha)
        # zeros over what the snapshot would otherwise read there (the parent's, or an earlier run's)
        for index in sorted((set(plan.parent) | set(plan.written)) - nonzero):
            if index >= result.blocks:
                continue
            zeroed += 1
            if _holds(plan, index) != ZERO_DIGEST:
                send(pool, index, ZERO_BLOCK, ZERO_DIGEST)
            else:
                result.already_written += 1
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            collect(done)
            flush()
    except BaseException:
        for future in pending:
            future.cancel()
        done, _ = wait(pending)
        for future in done:  # keep what did land: a rerun won't send it again
            if not future.cancelled() and future.exception() is None:
                finished.append(pending[future])
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        flush(force=True)
    result.zero = result.blocks - len(nonzero) - zeroed
    if progress:
        progress(result.zero * BLOCK_SIZE)
    return result
