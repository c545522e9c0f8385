from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.home import region_dir
from kiln.store import api


@pytest.fixture
def base_ami(busybox_dir: Path) -> str:
    """``busybox_dir`` (the session's busybox tree, tests/conftest.py) imported into this test's store."""
    return api.import_rootfs(busybox_dir, name="busybox-base")


def _blob_files(region: str = "local") -> dict[str, int]:
    """The blob files actually on disk: digest -> size."""
    root = region_dir(region) / "blobs" / "sha256"
    return {"sha256:" + p.name: p.stat().st_size for p in root.iterdir()}


@pytest.fixture
def blob_files() -> Callable[..., dict[str, int]]:
    return _blob_files
