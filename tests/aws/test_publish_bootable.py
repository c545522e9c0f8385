"""``kiln image publish --to aws`` of a bootable image (one with a kernel) sends its GPT disk — the one
EC2 boots, with the image's boot mode and root volume size — not the bare root file system."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.aws.conftest import client, disk_blocks, snapshot_blocks
from tests.conftest import Kiln, MotoServer

from kiln.store import api


def test_a_bootable_image_is_published_as_its_bootable_disk(
    kiln: Kiln, aws: MotoServer, busybox_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    root = busybox_copy("with-kernel")
    (root / "boot").mkdir(exist_ok=True)
    (root / "boot" / "vmlinuz-6.1.0-99-cloud-amd64").write_bytes(b"a stand-in kernel\n")
    (root / "etc" / "kiln").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "kiln" / "boot-mode").write_text("legacy-bios\n")
    ami = api.import_rootfs(root, name="with-kernel")
    result = kiln("image", "publish", ami, "--to", "aws", "--region", "us-east-1", "--endpoint-url", aws.endpoint,
                  "--output", "json")
    assert result.exit_code == 0, result.stderr
    published = json.loads(result.stdout)

    disk = api.export_image(ami, "raw", tmp_path / "disk.raw")
    assert disk.stat().st_size == 8 << 30  # the default root volume
    blocks = snapshot_blocks(aws, published["SnapshotId"])
    assert blocks == disk_blocks(disk)
    assert blocks[0][512:520] == b"EFI PART"  # a partitioned disk, not a file system
    assert blocks[0][:440] != bytes(440)  # GRUB's boot code in the MBR: the image's legacy-bios mode
    assert published["VolumeSize"] == 8 and published["DiskBytes"] == 8 << 30
    # (moto keeps no BootMode of RegisterImage, so the registered mode cannot be read back here)
    assert client(aws, "ec2").describe_images(ImageIds=[published["AmiId"]])["Images"][0]["Name"] == "with-kernel"

    # a child adding 1 MiB sends about that: the parent's GPT disk with the file system changed in place
    upper = tmp_path / "upper"
    (upper / "srv").mkdir(parents=True)
    (upper / "srv" / "new.bin").write_bytes(bytes(range(256)) * 4096)
    child = kiln("image", "publish", api.create_image_from_upper(ami, upper, name="with-kernel-child"), "--to",
                 "aws", "--region", "us-east-1", "--endpoint-url", aws.endpoint, "--output", "json")
    assert child.exit_code == 0, child.stderr
    sent = json.loads(child.stdout)
    assert sent["ParentSnapshotId"] == published["SnapshotId"] and sent["DiskBytes"] == 8 << 30
    assert 2 <= sent["BlocksSent"] <= 6, sent["BlocksSent"]
