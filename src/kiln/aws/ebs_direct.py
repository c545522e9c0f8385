"""The EBS direct APIs kiln writes snapshots with: StartSnapshot, PutSnapshotBlock, CompleteSnapshot.

Every call is retried on throttling and server errors (``kiln.aws.retry``) and fails as one
``AwsError`` naming the call; ``retries`` counts the retries made (all threads)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from kiln.aws.blocks import b64
from kiln.aws.errors import as_kiln_error
from kiln.aws.retry import Backoff, with_retries


class EbsDirect:
    def __init__(self, client: Any, backoff: Backoff = Backoff()) -> None:
        self.client = client
        self.backoff = backoff
        self._retries = itertools.count()
        self.retries = 0

    def _call(self, name: str, location: str | None = None, **params: Any) -> Any:
        method = getattr(self.client, name)

        def counted(_: BaseException) -> None:
            self.retries = next(self._retries) + 1

        try:
            return with_retries(lambda: method(**params), self.backoff, counted)
        except Exception as error:
            label = "".join(part.title() for part in name.split("_"))
            raise as_kiln_error(error, f"ebs {label}", location) from None

    def start_snapshot(self, *, volume_size: int, description: str, tags: Mapping[str, str], client_token: str,
                       parent_snapshot_id: str | None = None, timeout_minutes: int | None = None) -> str:
        params: dict[str, Any] = {
            "VolumeSize": volume_size,
            "Description": description,
            "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
            "ClientToken": client_token,
        }
        if parent_snapshot_id:
            params["ParentSnapshotId"] = parent_snapshot_id
        if timeout_minutes:
            params["Timeout"] = timeout_minutes
        return str(self._call("start_snapshot", **params)["SnapshotId"])

    def put_block(self, snapshot_id: str, index: int, data: bytes, sha256: bytes) -> None:
        self._call("put_snapshot_block", f"{snapshot_id} block {index}", SnapshotId=snapshot_id, BlockIndex=index,
                   BlockData=data, DataLength=len(data), Checksum=b64(sha256), ChecksumAlgorithm="SHA256")

    def complete(self, snapshot_id: str, changed_blocks: int, checksum: str) -> str:
        answer = self._call("complete_snapshot", snapshot_id, SnapshotId=snapshot_id,
                            ChangedBlocksCount=changed_blocks, Checksum=checksum, ChecksumAlgorithm="SHA256",
                            ChecksumAggregationMethod="LINEAR")
        return str(answer.get("Status", ""))
