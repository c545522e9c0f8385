"""Fixtures for runtime tests: a busybox layer (from the session's busybox tree), extra layers, clean-up."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT_FIXTURES = {"busybox_rootfs", "layer", "cleanup_instances"}
_ROOT_MODULES = {"test_overlay", "test_recovery"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without root (no overlayfs, no namespaces) the sandbox tests are skipped, not failed."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root for namespaces and overlayfs")
    here = Path(__file__).parent
    for item in items:
        if Path(item.path).parent != here:
            continue
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _ROOT_FIXTURES or Path(item.path).stem in _ROOT_MODULES:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def busybox_rootfs(busybox_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One read-only busybox layer shared by the session's tests: the session's busybox tree (kiln's own
    builder, tests/conftest.py) plus the users, groups, os-release and web root these tests look for."""
    root = Path(shutil.copytree(busybox_dir, tmp_path_factory.mktemp("layers") / "busybox", symlinks=True))
    (root / "var" / "www").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
        "www-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    )
    (root / "etc" / "group").write_text(
        "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nstaff:x:50:\nnogroup:x:65534:\n"
    )
    (root / "etc" / "hostname").write_text("busybox\n")
    (root / "etc" / "os-release").write_text(
        'NAME="BusyBox"\nID=busybox\nVERSION_ID="1.35.0"\nID_LIKE="linux tiny"\nPRETTY_NAME="BusyBox 1.35"\n'
    )
    (root / "var" / "www" / "index.html").write_text("hello from kiln\n")
    return root


@pytest.fixture
def layer(tmp_path: Path) -> Iterator[object]:
    """Make extra layers: ``layer("name", {"path": "content", "gone": None})``."""

    def make(name: str, files: dict[str, str | None]) -> Path:
        root = tmp_path / "layers" / name
        root.mkdir(parents=True)
        for path, content in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if content is None:
                os.mknod(target, 0o600 | 0o020000, os.makedev(0, 0))  # overlay whiteout
            else:
                target.write_text(content)
        return root

    yield make


@pytest.fixture
def cleanup_instances() -> Iterator[list[str]]:
    """Ids appended here are terminated after the test, whatever happened."""
    ids: list[str] = []
    yield ids
    from kiln.runtime import instances

    for instance_id in ids:
        try:
            instances.terminate(instance_id, force=True)
        except Exception as error:  # keep cleaning the others
            print(f"cleanup of {instance_id} failed: {error}")
