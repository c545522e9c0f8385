"""``kiln image publish --to aws`` against moto's server: the snapshot holds the raw export's bytes, a
child sends only the blocks that changed, the AMI carries kiln's tags, and a second publish is a no-op."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from tests.aws.conftest import client, disk_blocks, snapshot_blocks
from tests.conftest import Kiln, MotoServer

from kiln.db.engine import session
from kiln.db.tables.publishing import Publication, PublishedBlock
from kiln.store import api


def publish(kiln: Kiln, ami: str, endpoint: str, *extra: str, region: str | None = "us-east-1") -> dict:
    where = ("--region", region) if region else ()
    result = kiln("image", "publish", ami, "--to", "aws", *where, "--endpoint-url", endpoint, "--output", "json",
                  *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_publish_writes_the_raw_export_into_a_snapshot_and_registers_a_tagged_ami(
    kiln: Kiln, aws: MotoServer, base_ami: str, tmp_path: Path
) -> None:
    published = publish(kiln, base_ami, aws.endpoint, "--share", "UserId=111122223333")

    raw = disk_blocks(api.export_image(base_ami, "raw", tmp_path / "disk.raw"))
    assert snapshot_blocks(aws, published["SnapshotId"]) == raw  # every non-zero block, no other
    assert published["BlocksSent"] == len(raw) and published["BytesSent"] == len(raw) * 512 * 1024
    assert published["BlocksZero"] == published["BlocksTotal"] - len(raw) > 0
    assert published["ParentSnapshotId"] is None and published["VolumeSize"] == 1

    ec2 = client(aws, "ec2")
    image = ec2.describe_images(ImageIds=[published["AmiId"]])["Images"][0]
    tags = {tag["Key"]: tag["Value"] for tag in image["Tags"]}
    assert image["Name"] == "busybox-base"
    assert tags["kiln:SourceImageId"] == base_ami and tags["kiln:SourceRegion"] == "local"
    assert tags["kiln:CreationDate"].endswith("Z")
    tagged = ec2.describe_snapshots(Filters=[{"Name": "tag-key", "Values": ["kiln:SourceImageId"]}])["Snapshots"]
    assert [snapshot["SnapshotId"] for snapshot in tagged] == [published["SnapshotId"]]
    assert {"Key": "kiln:SourceImageId", "Value": base_ami} in tagged[0]["Tags"]

    def shared() -> list[dict[str, str]]:
        answer = ec2.describe_image_attribute(ImageId=published["AmiId"], Attribute="launchPermission")
        return sorted(answer["LaunchPermissions"], key=str)

    assert shared() == [{"UserId": "111122223333"}]
    text = kiln("image", "publish", base_ami, "--to", "aws", "--region", "us-east-1", "--endpoint-url", aws.endpoint,
                "--share", "Group=all")  # published already: only the grant is added
    assert text.exit_code == 0 and text.stdout.startswith(published["AmiId"]) and "already published" in text.stdout
    assert shared() == [{"Group": "all"}, {"UserId": "111122223333"}]
    again = publish(kiln, base_ami, aws.endpoint)
    assert again["AlreadyPublished"] and again["AmiId"] == published["AmiId"] and again["BlocksSent"] == 0
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == 1


def test_a_child_sends_only_the_blocks_that_differ_from_its_published_parent(
    kiln: Kiln, aws: MotoServer, base_ami: str, tmp_path: Path
) -> None:
    parent = publish(kiln, base_ami, aws.endpoint)
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "hostname").write_text("node\n")  # same size as busybox's "kiln\n"
    child_ami = api.create_image_from_upper(base_ami, upper, name="busybox-child")

    child = publish(kiln, child_ami, aws.endpoint, region=None)  # the chain's region: AWS_DEFAULT_REGION

    assert child["ParentSnapshotId"] == parent["SnapshotId"] and child["DiskBytes"] == parent["DiskBytes"]
    parent_disk = disk_blocks(api.export_image(base_ami, "raw", tmp_path / "parent.raw"))
    # the child's disk is laid out like its parent's (same identity, times and size)
    api.raw_disk(child_ami, tmp_path / "child.raw", like=api.raw_disk(base_ami, tmp_path / "again.raw"))
    child_disk = disk_blocks(tmp_path / "child.raw")
    changed = {i for i in parent_disk.keys() | child_disk.keys() if parent_disk.get(i) != child_disk.get(i)}
    print(f"child: {len(changed)} of {len(child_disk)} blocks changed")
    sent = snapshot_blocks(aws, child["SnapshotId"])  # moto keeps only what was put (no parent inheritance)
    assert set(sent) == changed and child["BlocksSent"] == len(changed)
    assert 0 < len(changed) < len(parent_disk) // 2
    assert child["BlocksUnchanged"] == len(child_disk.keys() - changed)
    # the parent's blocks overlaid with the child's are the child's disk
    merged = {index: data for index, data in {**parent_disk, **sent}.items() if data.count(0) != len(data)}
    assert merged == child_disk


def test_bad_region_profile_or_ami_is_one_clear_error_and_records_nothing(
    kiln: Kiln, aws: MotoServer, base_ami: str
) -> None:
    cases = [
        (("--region", "moon-base-1"), "--region"),
        (("--region", "us-east-1", "--profile", "nobody"), "--profile"),
        (("--region", "us-east-1", "--share", "UserId=12"), "--share"),
        (("--region", "us-east-1", "--share", "Group=friends"), "--share"),
    ]
    for args, place in cases:
        result = kiln("image", "publish", base_ami, "--to", "aws", *args, "--endpoint-url", aws.endpoint)
        assert result.exit_code == 1 and place in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) <= 2  # the error, and maybe a hint
    unknown = kiln("image", "publish", "ami-0123456789abcdef0", "--to", "aws", "--region", "us-east-1",
                   "--endpoint-url", aws.endpoint)
    assert unknown.exit_code != 0 and "ami-0123456789abcdef0" in unknown.stderr and "Traceback" not in unknown.stderr
    nowhere = kiln("image", "publish", base_ami, "--to", "aws", "--endpoint-url", aws.endpoint,
                   env={"AWS_DEFAULT_REGION": None})
    assert nowhere.exit_code == 1 and "--region" in nowhere.stderr
    target = kiln("image", "publish", base_ami, "--to", "gcp", "--region", "us-east-1")
    assert target.exit_code != 0 and "--to" in target.stderr
    with session() as db:
        assert db.scalar(select(func.count()).select_from(Publication)) == 0
        assert db.scalar(select(func.count()).select_from(PublishedBlock)) == 0
    ours = client(aws, "ec2").describe_snapshots(Filters=[{"Name": "tag-key", "Values": ["kiln:SourceImageId"]}])
    assert ours["Snapshots"] == []


def test_a_child_that_adds_or_deletes_a_file_sends_about_its_size(
    kiln: Kiln, aws: MotoServer, base_ami: str, tmp_path: Path
) -> None:
    import os

    publish(kiln, base_ami, aws.endpoint)
    added = tmp_path / "added"
    (added / "srv").mkdir(parents=True)
    (added / "srv" / "new.bin").write_bytes(os.urandom(1 << 20))
    child_ami = api.create_image_from_upper(base_ami, added, name="busybox-added")
    child = publish(kiln, child_ami, aws.endpoint)
    # 1 MiB is 2 blocks of 512 KiB (3 when not aligned), and a few for inodes, bitmaps, the directory
    print(f"added 1 MiB: {child['BlocksSent']} blocks sent")
    assert 2 <= child["BlocksSent"] <= 6

    deleted = tmp_path / "deleted"
    (deleted / "srv").mkdir(parents=True)
    os.mknod(deleted / "srv" / "new.bin", 0o600 | 0o020000, 0)  # whiteout
    grandchild_ami = api.create_image_from_upper(child_ami, deleted, name="busybox-deleted")
    grandchild = publish(kiln, grandchild_ami, aws.endpoint)
    print(f"deleted 1 MiB: {grandchild['BlocksSent']} blocks sent")
    assert grandchild["ParentSnapshotId"] == child["SnapshotId"]
    assert 2 <= grandchild["BlocksSent"] <= 6  # the freed blocks zeroed, and the metadata
    # what was sent, over the parent's, is the grandchild's disk made again from the chain
    made = tmp_path / "grandchild.raw"
    api.raw_disk(grandchild_ami, made, like=api.raw_disk(child_ami, tmp_path / "child.raw",
                                                         like=api.raw_disk(base_ami, tmp_path / "base.raw")))
    merged = {**snapshot_blocks(aws, published_snapshot(kiln, base_ami, aws.endpoint)),
              **snapshot_blocks(aws, child["SnapshotId"]), **snapshot_blocks(aws, grandchild["SnapshotId"])}
    assert {i: d for i, d in merged.items() if d.count(0) != len(d)} == disk_blocks(made)


def published_snapshot(kiln: Kiln, ami: str, endpoint: str) -> str:
    return publish(kiln, ami, endpoint)["SnapshotId"]
