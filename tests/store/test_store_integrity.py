"""index.json updates are serialized, hostile imports change nothing,
fsck repairs a lost index ref, quarantined images are not launchable."""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
from pathlib import Path

import pytest

from kiln.errors import InvalidInput, NotFound
from kiln.home import region_dir
from kiln.store import api
from kiln.store.layout import MANIFEST_TYPE, Descriptor, Layout


def test_concurrent_index_updates_are_serialized() -> None:
    layout = Layout.for_region("local")
    digest = layout.blobs.put_bytes(b"{}")

    def add(i: int) -> None:
        layout.add_ref(f"ami-{i:017x}", Descriptor(MANIFEST_TYPE, digest, 2))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    index = json.loads((region_dir() / "index.json").read_text())
    assert len(index["manifests"]) == 24
    assert not [p for p in region_dir().iterdir() if p.name.startswith(".index.json")]


def test_hostile_tarball_import_registers_nothing(tmp_path: Path) -> None:
    tarball = tmp_path / "evil.tar"
    with tarfile.open(tarball, "w") as tar:
        info = tarfile.TarInfo("etc/ok")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
        info = tarfile.TarInfo("dev/sda")
        info.type, info.devmajor, info.devminor = tarfile.BLKTYPE, 8, 0
        tar.addfile(info)
    with pytest.raises(InvalidInput, match="dev/sda"):
        api.import_rootfs(tarball, name="evil")
    assert api.describe_images(filters={"state": ["available", "deregistered", "failed"]}) == []
    assert api.list_snapshots() == []
    ami = api.import_rootfs(tarball, name="devices-allowed", allow_devices=True)
    device = api.layer_dirs(ami)[0] / "dev" / "sda"
    assert os.major(device.lstat().st_rdev) == 8


def test_fsck_re_adds_lost_index_ref(base_ami: str) -> None:
    Layout.for_region("local").remove_ref(base_ami)  # as if we crashed between commit and index update
    report = api.fsck()
    assert report.repaired and base_ami in Layout.for_region("local").refs()


def test_quarantined_image_is_not_launchable(base_ami: str) -> None:
    layer = api.image_layers(base_ami)[0].digest
    Layout.for_region("local").blobs.quarantine(layer)
    with pytest.raises(NotFound, match="quarantined"):
        api.assert_launchable(base_ami)
    with pytest.raises(NotFound, match="quarantined"):
        api.export_image(base_ami, "tar", region_dir() / "x.tar")


def test_failure_before_commit_leaves_no_image(
    tmp_path: Path, base_ami: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiln.store import images

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated crash before the registering transaction commits")

    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "new").write_bytes(os.urandom(4096))
    with monkeypatch.context() as patch, pytest.raises(RuntimeError):
        patch.setattr(images, "create_snapshot", boom)
        api.create_image_from_upper(base_ami, upper, name="never")
    assert [i.id for i in api.describe_images()] == [base_ami]
    assert len(api.list_snapshots()) == 1
    assert list(Layout.for_region("local").refs()) == [base_ami]
    assert api.fsck().ok
    # the orphaned new blobs are unpinned and go once the grace period is over
    result = api.gc(grace_seconds=0)
    assert len(result.deleted) == 3  # captured layer, config, manifest
    assert api.layer_dirs(base_ami)
