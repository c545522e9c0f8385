"""A bootstrapped parent is registered once and reused while it stays registered."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from kiln.store.api import bootstrap_image, deregister_image


def test_bootstrap_reuses_its_registered_ami(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "bootstrap"
    cache.mkdir()
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\nVERSION_ID=12\n")
    with tarfile.open(cache / "bookworm.tar", "w") as tar:  # stands in for mmdebstrap's output
        tar.add(root, arcname=".")
    monkeypatch.setenv("KILN_BOOTSTRAP_CACHE", str(cache))
    first = bootstrap_image("debian:bookworm")
    assert bootstrap_image("debian:bookworm") == first
    deregister_image(first, delete_snapshots=True)
    assert bootstrap_image("debian:bookworm") != first
