from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.home import region_dir
from kiln.store import api
from kiln.store.busybox import busybox_rootfs


@pytest.fixture
def busybox_dir(tmp_path: Path) -> Path:
    return busybox_rootfs(tmp_path / "busybox-root")


@pytest.fixture
def base_ami(busybox_dir: Path) -> str:
    return api.import_rootfs(busybox_dir, name="busybox-base")


def _blob_files(region: str = "local") -> dict[str, int]:
    """The blob files actually on disk: digest -> size."""
    root = region_dir(region) / "blobs" / "sha256"
    return {"sha256:" + p.name: p.stat().st_size for p in root.iterdir()}


@pytest.fixture
def blob_files() -> Callable[..., dict[str, int]]:
    return _blob_files
