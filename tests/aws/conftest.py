from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.aws.proxy import FaultProxy
from tests.conftest import MotoServer

from kiln.store import api


def client(aws: MotoServer, service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=aws.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def proxy(aws: MotoServer) -> Iterator[FaultProxy]:
    with FaultProxy(aws.endpoint) as running:
        yield running


@pytest.fixture
def base_ami(busybox_dir: Path) -> str:
    return api.import_rootfs(busybox_dir, name="busybox-base")


def snapshot_blocks(aws: MotoServer, snapshot_id: str) -> dict[int, bytes]:
    """Every block moto holds for the snapshot, read back with ListSnapshotBlocks/GetSnapshotBlock."""
    ebs = client(aws, "ebs")
    listed = ebs.list_snapshot_blocks(SnapshotId=snapshot_id)
    # (moto says BlockSize 512 where AWS says 524288: the README's gaps)
    return {
        block["BlockIndex"]: ebs.get_snapshot_block(
            SnapshotId=snapshot_id, BlockIndex=block["BlockIndex"], BlockToken=block["BlockToken"]
        )["BlockData"].read()
        for block in listed["Blocks"]
    }


def disk_blocks(path: Path) -> dict[int, bytes]:
    """The non-zero 512 KiB blocks of a raw disk, read plainly (not with kiln's reader)."""
    blocks = {}
    with open(path, "rb") as disk:
        index = 0
        while data := disk.read(512 * 1024):
            if data.count(0) != len(data):
                blocks[index] = data.ljust(512 * 1024, b"\0")
            index += 1
    return blocks
