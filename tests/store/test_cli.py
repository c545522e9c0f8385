"""The store's CLI verbs end to end (the ``kiln`` command in-process, real store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln.home import region_dir
from kiln.store.blobs import BlobStore


@pytest.fixture
def kiln(kiln):
    """The shared in-process ``kiln`` fixture, asserting success unless called with ``ok=False``."""

    def run(*args: str, ok: bool = True):
        result = kiln(*args)
        if ok:
            assert result.exit_code == 0, result.stderr
        return result

    return run


def test_import_deregister_snapshot_gc_fsck(kiln, tmp_path: Path, busybox_dir: Path) -> None:
    ami = kiln("image", "import", str(busybox_dir), "--name", "cli-base", "--tag", "env=test").stdout.strip()
    assert ami.startswith("ami-")
    listed = json.loads(kiln("image", "list", "--output", "json").stdout)
    assert [i["ImageId"] for i in listed["Images"]] == [ami]
    assert listed["Images"][0]["Tags"] == [{"Key": "env", "Value": "test"}]
    described = json.loads(kiln("image", "describe", ami, "--output", "json").stdout)
    snap = described["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]

    refused = kiln("snapshot", "delete", snap, ok=False)
    assert refused.exit_code != 0 and "InvalidSnapshot.InUse" in refused.stderr

    out = kiln("image", "deregister", ami).stdout
    assert snap in out and "still hold" in out
    orphans = json.loads(kiln("snapshot", "list", "--orphaned", "--output", "json").stdout)["Snapshots"]
    assert [s["SnapshotId"] for s in orphans] == [snap]
    size = orphans[0]["UniqueBytes"]
    assert size > 0
    preview = json.loads(kiln("snapshot", "delete", snap, "--dry-run", "--output", "json").stdout)
    assert preview["FreedBytes"] == size
    deleted = json.loads(kiln("snapshot", "delete", snap, "--output", "json").stdout)
    assert deleted["FreedBytes"] == size

    assert not any((region_dir() / "blobs" / "sha256").iterdir())  # manifest+config went with the AMI
    stray = BlobStore(region_dir()).put_bytes(b"stray" * 1000)
    gc = json.loads(kiln("store", "gc", "--dry-run", "--grace-seconds", "0", "--output", "json").stdout)
    assert gc["DryRun"] is True and gc["Deleted"] == [{"Digest": stray, "Size": 5000}]
    kiln("store", "gc", "--grace-seconds", "0")
    assert not any((region_dir() / "blobs" / "sha256").iterdir())
    fsck = json.loads(kiln("store", "fsck", "--output", "json").stdout)
    assert fsck["ok"] is True


def test_export_and_lifecycle_verbs(kiln, tmp_path: Path, busybox_dir: Path) -> None:
    ami = kiln("image", "import", str(busybox_dir), "--name", "cli-base").stdout.strip()
    target = tmp_path / "out.qcow2"
    kiln("image", "export", ami, "--format", "qcow2", "-o", str(target))
    assert target.read_bytes()[:4] == b"QFI\xfb"
    # The owner always lists its own deprecated AMIs (EC2); an account it is shared with does not.
    kiln("account", "create", "peer", "--account-id", "210987654321")
    kiln("image", "share", ami, "--add", "UserId=210987654321")
    kiln("image", "deprecate", ami, "--in-days", "0")
    assert json.loads(kiln("image", "list", "--account", "210987654321", "--output", "json").stdout)["Images"] == []
    kiln("image", "deprecate", ami, "--cancel")
    kiln("image", "disable", ami)
    disabled = json.loads(kiln("image", "list", "--include-disabled", "--output", "json").stdout)["Images"]
    assert disabled[0]["State"] == "disabled"
    kiln("image", "enable", ami)
    kiln("image", "protect", ami, "--with-cooldown")
    blocked = kiln("image", "deregister", ami, ok=False)
    assert blocked.exit_code != 0 and "protection" in blocked.stderr
    shared = json.loads(kiln("image", "share", ami, "--add", "Group=all", "--output", "json").stdout)
    assert shared["LaunchPermissions"] == [{"Group": "all"}]
