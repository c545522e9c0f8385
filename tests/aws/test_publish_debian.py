"""A Debian bookworm minbase (mmdebstrap: network) published through the EBS direct APIs, read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.aws.conftest import disk_blocks, snapshot_blocks
from tests.conftest import Kiln, MotoServer

from kiln.store import api


@pytest.mark.network
@pytest.mark.slow
def test_publish_a_debian_image_and_read_its_blocks_back(
    kiln: Kiln, aws: MotoServer, bootstrap_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KILN_BOOTSTRAP_CACHE", str(bootstrap_cache))
    ami = api.bootstrap_image("debian:bookworm")

    result = kiln("image", "publish", ami, "--to", "aws", "--region", "us-east-1", "--endpoint-url", aws.endpoint,
                  "--output", "json")
    assert result.exit_code == 0, result.stderr
    published = json.loads(result.stdout)

    raw = disk_blocks(api.export_image(ami, "raw", tmp_path / "debian.raw"))
    assert published["BlocksSent"] == len(raw) > 100
    assert snapshot_blocks(aws, published["SnapshotId"]) == raw
