"""AMI watermarks and ancestry: attached by the owner only, inherited by every AMI made or copied from a
marked one (across regions and accounts), filtered in DescribeImages, judged by Allowed AMIs criteria;
GetImageAncestry walks the recorded parents."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kiln.db.base import clock_now
from kiln.ec2_errors import AuthFailure, InvalidAMIIDNotFound, InvalidParameterValue
from kiln.services.accounts import accounts
from kiln.services.accounts.regions import create_region
from kiln.services.ec2 import allowed_images as allowed
from kiln.services.ec2 import images, instances, snapshots
from kiln.services.ec2.allowed_criteria import judge
from kiln.store import api as store

OWNER = "123456789012"
PEER = "210987654321"
PUBLISHER = "137112412989"


@pytest.fixture
def ami(busybox_dir: Path) -> str:
    accounts.create_account("peer", account_id=PEER)
    return str(images.import_image(busybox_dir, name="golden-base")["ImageId"])


def _marks(image_id: str, region: str = "local", account: str = OWNER) -> list[dict[str, str]]:
    return list(images.describe_image(image_id, region, account=account).get("ImageWatermarks", []))


def _snapshot(image_id: str, account: str = OWNER) -> str:
    return str(images.describe_image(image_id, account=account)["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])


def test_the_owner_attaches_a_watermark_keyed_by_its_account_and_it_shows_in_describe(ami: str) -> None:
    assert _marks(ami) == []
    assert images.attach_image_watermark(ami, "approved (security)") == {"WatermarkKey": f"{OWNER}:approved (security)"}
    [mark] = _marks(ami)
    assert (mark["WatermarkKey"], mark["SourceImageId"], mark["SourceImageRegion"]) == (
        f"{OWNER}:approved (security)", ami, "local")
    assert mark["SourceImageCreationTime"] == images.describe_image(ami)["CreationDate"]
    assert images.attach_image_watermark(ami, "approved (security)")["WatermarkKey"] == f"{OWNER}:approved (security)"
    assert _marks(ami) == [mark]  # attaching again changes nothing, not even the time
    keys = [i["ImageId"] for i in images.describe_images(
        filters={"image-watermark.watermark-key": [f"{OWNER}:approved*"]})["Images"]]
    assert keys == [ami]
    assert images.describe_images(filters={"image-watermark.watermark-key": ["*:rejected"]})["Images"] == []
    assert images.detach_image_watermark(ami, f"{OWNER}:approved (security)") == {"Return": True}
    assert images.detach_image_watermark(ami, f"{OWNER}:approved (security)") == {"Return": True}  # idempotent
    assert _marks(ami) == []


def test_bad_watermarks_get_one_error_and_change_nothing(ami: str) -> None:
    for name in ("ab", "x" * 129, "semi;colon"):
        with pytest.raises(InvalidParameterValue) as refused:
            images.attach_image_watermark(ami, name)
        assert refused.value.location == "WatermarkName"
    for index in range(5):
        images.attach_image_watermark(ami, f"mark-{index}")
    with pytest.raises(InvalidParameterValue, match="already has 5 watermarks"):
        images.attach_image_watermark(ami, "mark-5")
    assert len(_marks(ami)) == 5
    images.modify_launch_permission(ami, add=[{"UserId": PEER}])
    with pytest.raises(AuthFailure):
        images.attach_image_watermark(ami, "peer-mark", account=PEER)
    with pytest.raises(AuthFailure):
        images.detach_image_watermark(ami, f"{OWNER}:mark-0", account=PEER)
    with pytest.raises(InvalidAMIIDNotFound):
        images.attach_image_watermark("ami-0123456789abcdef0", "mark")
    assert len(_marks(ami)) == 5
    # a marked AMI cannot be made public, and a public one cannot be marked
    with pytest.raises(InvalidParameterValue, match="watermarked AMI cannot be made public"):
        images.modify_launch_permission(ami, add=[{"Group": "all"}])
    assert images.describe_image(ami)["Public"] is False
    for index in range(5):
        images.detach_image_watermark(ami, f"{OWNER}:mark-{index}")
    images.modify_launch_permission(ami, add=[{"Group": "all"}])
    with pytest.raises(InvalidParameterValue, match="public"):
        images.attach_image_watermark(ami, "late-mark")
    assert _marks(ami) == []


def test_copies_inherit_the_watermark_across_regions_and_accounts_and_keep_it_after_a_detach(ami: str) -> None:
    create_region("eu-kiln-1")
    images.attach_image_watermark(ami, "golden")
    [original] = _marks(ami)
    copy = images.copy_image(ami, region="eu-kiln-1", name="golden-eu")["ImageId"]
    assert _marks(copy, "eu-kiln-1") == [original]
    images.modify_launch_permission(ami, add=[{"UserId": PEER}])
    snapshots.modify_snapshot_attribute(_snapshot(ami), create_volume_permission={"Add": [{"UserId": PEER}]})
    peer_copy = images.copy_image(ami, name="peer-golden", account=PEER)["ImageId"]
    assert _marks(peer_copy, account=PEER) == [original]  # the key keeps the creator's account
    with pytest.raises(AuthFailure):  # the peer owns its copy, not the watermark's meaning: it can detach it
        images.detach_image_watermark(ami, original["WatermarkKey"], account=PEER)
    images.detach_image_watermark(peer_copy, original["WatermarkKey"], account=PEER)
    assert _marks(peer_copy, account=PEER) == []
    images.detach_image_watermark(ami, original["WatermarkKey"])
    assert _marks(copy, "eu-kiln-1") == [original]
    found = images.describe_images(region="eu-kiln-1", filters={"image-watermark.source-image-id": [ami]})
    assert [i["ImageId"] for i in found["Images"]] == [copy]
    by_region = images.describe_images(region="eu-kiln-1", filters={"source-image-region": ["local"]})
    assert [i["ImageId"] for i in by_region["Images"]] == [copy]


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")
def test_an_image_made_from_an_instance_of_a_marked_ami_inherits_the_mark(ami: str) -> None:
    images.attach_image_watermark(ami, "golden")
    instance = instances.run_instance(ami)
    try:
        made = instances.create_image(instance.id, name="from-instance")
    finally:
        instances.terminate_instance(instance.id)
    assert [m["WatermarkKey"] for m in _marks(made)] == [f"{OWNER}:golden"]
    assert _marks(made)[0]["SourceImageId"] == ami
    ancestry = images.get_image_ancestry(made)["ImageAncestryEntries"]
    assert [(e["ImageId"], e.get("SourceImageId")) for e in ancestry] == [(made, ami), (ami, None)]


def test_ancestry_walks_copies_across_regions_to_the_root_and_lists_deregistered_parents(ami: str) -> None:
    create_region("eu-kiln-1")
    eu = images.copy_image(ami, region="eu-kiln-1", name="golden-eu")["ImageId"]
    back = images.copy_image(eu, source_region="eu-kiln-1", region="local", name="golden-back")["ImageId"]
    images.deregister_image(eu, region="eu-kiln-1")
    entries = images.get_image_ancestry(back)["ImageAncestryEntries"]
    assert [(e["ImageId"], e.get("SourceImageId"), e.get("SourceImageRegion")) for e in entries] == [
        (back, eu, "eu-kiln-1"), (eu, ami, "local"), (ami, None, None)]
    assert all(e["CreationDate"].endswith("Z") for e in entries)
    assert images.describe_image(back)["SourceImageRegion"] == "eu-kiln-1"
    with pytest.raises(InvalidAMIIDNotFound):
        images.get_image_ancestry("ami-0123456789abcdef0")
    with pytest.raises(InvalidAMIIDNotFound):  # one the caller may not see
        images.get_image_ancestry(back, account=PEER)


def test_ancestry_ends_at_a_public_image_of_a_verified_provider(busybox_dir: Path) -> None:
    accounts.create_account("amazon", account_id=PUBLISHER, image_owner_alias="amazon")
    base = str(images.import_image(busybox_dir, name="al2023-base", account=PUBLISHER)["ImageId"])
    amazon = images.copy_image(base, name="al2023-ami-minimal", account=PUBLISHER)["ImageId"]
    images.modify_launch_permission(amazon, add=[{"Group": "all"}], account=PUBLISHER)
    snapshots.modify_snapshot_attribute(_snapshot(amazon, PUBLISHER), create_volume_permission={
        "Add": [{"Group": "all"}]}, account=PUBLISHER)
    mine = images.copy_image(amazon, name="my-al2023")["ImageId"]
    entries = images.get_image_ancestry(mine)["ImageAncestryEntries"]
    assert [(e["ImageId"], e.get("ImageOwnerAlias")) for e in entries] == [(mine, None), (amazon, "amazon")]


def test_allowed_images_criteria_judge_watermarks(ami: str, monkeypatch: pytest.MonkeyPatch) -> None:
    images.modify_launch_permission(ami, add=[{"UserId": PEER}])
    allowed.replace_image_criteria(
        [{"ImageWatermarks": [{"WatermarkKey": f"{OWNER}:appr?ved", "MaximumDaysSinceWatermarkCreated": 30}]}],
        account=PEER)
    allowed.enable_allowed_images_settings("audit-mode", account=PEER)

    def judged() -> bool:
        [image] = images.describe_images(image_ids=[ami], account=PEER)["Images"]
        return bool(image["ImageAllowed"])

    assert judged() is False
    criteria = allowed.get_allowed_images_settings(account=PEER)["ImageCriteria"]
    assert "it has no watermark" in judge(criteria, store.get_image(ami), PEER, clock_now())[1]
    images.attach_image_watermark(ami, "rejected")
    assert judged() is False
    images.attach_image_watermark(ami, "approved")
    assert judged() is True
    monkeypatch.setenv("KILN_CLOCK", "+31d")
    assert judged() is False
    monkeypatch.delenv("KILN_CLOCK")
    allowed.replace_image_criteria([{"ImageWatermarks": [{"SourceImageRegion": "eu-*"}]}], account=PEER)
    assert judged() is False
    for bad, where in (
        ([{"ImageWatermarks": []}], "ImageCriteria[0].ImageWatermarks"),
        ([{"ImageWatermarks": [{}]}], "ImageCriteria[0].ImageWatermarks[0]"),
        ([{"ImageWatermarks": [{"Key": "x"}]}], "ImageCriteria[0].ImageWatermarks[0].Key"),
        ([{"ImageWatermarks": [{"MaximumDaysSinceWatermarkCreated": -1}]}],
         "ImageCriteria[0].ImageWatermarks[0].MaximumDaysSinceWatermarkCreated"),
        ([{"ImageWatermarks": [{"WatermarkKey": "a"}] * 51}], "ImageCriteria[0].ImageWatermarks"),
    ):
        with pytest.raises(InvalidParameterValue) as refused:
            allowed.replace_image_criteria(bad, account=PEER)
        assert refused.value.location == where
    assert allowed.get_allowed_images_settings(account=PEER)["ImageCriteria"] == [
        {"ImageWatermarks": [{"SourceImageRegion": "eu-*"}]}]


def test_the_cli_attaches_lists_detaches_and_shows_ancestry(kiln, ami: str) -> None:  # type: ignore[no-untyped-def]
    attached = kiln("image", "watermark", "attach", ami, "approved", "--output", "json")
    assert attached.exit_code == 0, attached.stderr
    assert '"WatermarkKey": "123456789012:approved"' in attached.stdout
    listed = kiln("image", "watermark", "list", ami)
    assert "123456789012:approved" in listed.stdout and ami in listed.stdout
    bad = kiln("image", "watermark", "attach", ami, "x")
    assert bad.exit_code != 0 and "WatermarkName" in bad.stderr and "Traceback" not in bad.stderr
    copy = images.copy_image(ami, name="golden-copy")["ImageId"]
    shown = kiln("image", "ancestry", copy, "--output", "json")
    assert shown.exit_code == 0, shown.stderr
    assert [e["ImageId"] for e in json.loads(shown.stdout)["ImageAncestryEntries"]] == [copy, ami]
    assert kiln("image", "watermark", "detach", ami, "123456789012:approved").exit_code == 0
    assert _marks(ami) == []
