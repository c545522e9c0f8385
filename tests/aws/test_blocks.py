"""The disk as EBS blocks: holes and zero blocks skipped, the last block padded, the linear checksum,
and zeros written where the parent snapshot holds data the child doesn't."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from tests.aws.conftest import client, snapshot_blocks
from tests.conftest import MotoServer

from kiln.aws.blocks import BLOCK_SIZE, ZERO_DIGEST, digest, disk_blocks, linear_checksum, volume_size_gib
from kiln.aws.ebs_direct import EbsDirect
from kiln.aws.upload import UploadPlan, upload


def sparse_disk(path: Path) -> Path:
    """Data in block 0, a hole, data at the end of block 3 and in a short last block 5; block 4 written
    as zeros (not a hole)."""
    with open(path, "wb") as disk:
        disk.write(b"a" * 100)
        disk.seek(4 * BLOCK_SIZE - 10)
        disk.write(b"b" * 10)
        disk.write(bytes(BLOCK_SIZE))
        disk.write(b"c" * 1000)
    return path


def test_blocks_skip_holes_and_zeros_and_pad_the_last(tmp_path: Path) -> None:
    disk = sparse_disk(tmp_path / "disk.raw")
    blocks = dict(disk_blocks(disk))
    assert sorted(blocks) == [0, 3, 5]
    assert blocks[0] == b"a" * 100 + bytes(BLOCK_SIZE - 100)
    assert blocks[3] == bytes(BLOCK_SIZE - 10) + b"b" * 10
    assert blocks[5] == b"c" * 1000 + bytes(BLOCK_SIZE - 1000)
    assert volume_size_gib(disk.stat().st_size) == 1 and volume_size_gib((1 << 30) + 1) == 2


def test_the_linear_checksum_hashes_the_block_digests_in_index_order() -> None:
    digests = [digest(b"x" * BLOCK_SIZE), digest(b"y" * BLOCK_SIZE)]
    expected = base64.b64encode(hashlib.sha256(digests[0] + digests[1]).digest()).decode()
    assert linear_checksum(digests) == expected
    assert linear_checksum(reversed(digests)) != expected


def test_zeros_are_written_over_parent_blocks_the_child_no_longer_has(aws: MotoServer, tmp_path: Path) -> None:
    disk = sparse_disk(tmp_path / "disk.raw")
    ebs = EbsDirect(client(aws, "ebs"))
    snapshot = ebs.start_snapshot(volume_size=1, description="t", tags={}, client_token="t-1")
    parent = {0: digest(b"a" * 100 + bytes(BLOCK_SIZE - 100)), 1: digest(b"old" * 1000), 4: digest(b"z")}
    recorded: list[tuple[int, bytes, bool]] = []

    result = upload(ebs, disk, UploadPlan(snapshot, parent=parent), workers=2, record=recorded.extend)

    sent = snapshot_blocks(aws, snapshot)
    assert sorted(sent) == [1, 3, 4, 5]  # block 0 is the parent's already
    assert sent[1] == sent[4] == bytes(BLOCK_SIZE)
    assert (result.sent, result.unchanged, result.zero) == (4, 1, 1)  # block 2 is zero in both
    assert sorted(recorded) == sorted([(0, parent[0], False), (1, ZERO_DIGEST, True), (3, digest(sent[3]), True),
                                       (4, ZERO_DIGEST, True), (5, digest(sent[5]), True)])
