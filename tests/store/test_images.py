"""AMI semantics following EC2: describe filters, deprecation, disable, protection, sharing, names."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from kiln.db.base import utcnow
from kiln.errors import AlreadyExists, Conflict, Forbidden, InvalidInput, NotFound
from kiln.store import api


def test_describe_filters(busybox_dir: Path) -> None:
    web = api.import_rootfs(busybox_dir, name="web-2024.01", tags={"role": "web", "team": "a"})
    db = api.import_rootfs(
        busybox_dir, name="db-2024.01", tags={"role": "db"}, root_device_type="instance-store"
    )
    names = lambda images: sorted(i.name for i in images)  # noqa: E731
    assert names(api.describe_images(filters={"name": ["web-*"]})) == ["web-2024.01"]
    assert names(api.describe_images(names=["???-2024.01"])) == ["web-2024.01"]
    assert names(api.describe_images(filters={"tag:role": ["db"]})) == ["db-2024.01"]
    assert names(api.describe_images(filters={"tag-key": ["team"]})) == ["web-2024.01"]
    assert names(api.describe_images(filters={"root-device-type": ["instance-store"]})) == ["db-2024.01"]
    assert names(api.describe_images(owners=["self"])) == ["db-2024.01", "web-2024.01"]
    assert names(api.describe_images(image_ids=[db])) == ["db-2024.01"]
    assert names(api.describe_images(filters={"state": ["available"], "image-id": [web]})) == ["web-2024.01"]
    with pytest.raises(NotFound, match=r"InvalidAMIID\.NotFound"):
        api.describe_images(image_ids=["ami-0123456789abcdef0"])
    with pytest.raises(InvalidInput):
        api.describe_images(filters={"bogus": ["x"]})
    ec2 = api.get_image(web).to_ec2()
    assert ec2["Tags"] == [{"Key": "role", "Value": "web"}, {"Key": "team", "Value": "a"}]
    assert ec2["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"].startswith("snap-")  # type: ignore[index]
    assert ec2["OwnerId"] == "123456789012" and ec2["State"] == "available"


def test_name_unique_among_registered(busybox_dir: Path) -> None:
    first = api.import_rootfs(busybox_dir, name="golden")
    with pytest.raises(AlreadyExists, match=r"InvalidAMIName\.Duplicate"):
        api.import_rootfs(busybox_dir, name="golden")
    api.deregister_image(first)
    assert api.import_rootfs(busybox_dir, name="golden") != first
    with pytest.raises(InvalidInput):
        api.import_rootfs(busybox_dir, name="x")


def test_deprecation_hides_but_stays_launchable(base_ami: str) -> None:
    api.enable_image_deprecation(base_ami, utcnow() - timedelta(minutes=1))
    assert api.describe_images() == []
    assert [i.id for i in api.describe_images(include_deprecated=True)] == [base_ami]
    assert [i.id for i in api.describe_images(image_ids=[base_ami])] == [base_ami]
    assert api.assert_launchable(base_ami).deprecated
    assert "DeprecationTime" in api.get_image(base_ami).to_ec2()
    api.disable_image_deprecation(base_ami)
    assert [i.id for i in api.describe_images()] == [base_ami]
    with pytest.raises(InvalidInput):
        api.enable_image_deprecation(base_ami, utcnow() + timedelta(days=365 * 11))


def test_disable_enable(base_ami: str) -> None:
    api.modify_launch_permission(base_ami, add=[{"UserId": "210987654321"}])
    api.disable_image(base_ami)
    assert api.describe_images() == []
    assert [i.state for i in api.describe_images(include_disabled=True)] == ["disabled"]
    with pytest.raises(Forbidden):
        api.assert_launchable(base_ami)
    assert api.get_image(base_ami).launch_permissions == []  # disabling removes sharing
    api.enable_image(base_ami)
    assert api.assert_launchable(base_ami).state == "available"


def test_deregistration_protection_with_cooldown(base_ami: str) -> None:
    api.enable_deregistration_protection(base_ami, with_cooldown=True)
    assert api.get_image(base_ami).deregistration_protection == "enabled-with-cooldown"
    with pytest.raises(Forbidden):
        api.deregister_image(base_ami)
    api.disable_deregistration_protection(base_ami)
    assert api.get_image(base_ami).deregistration_protection.startswith("disabled-until ")
    with pytest.raises(Forbidden):
        api.deregister_image(base_ami)  # the 24 h cooldown still blocks it
    assert api.get_image(base_ami).state == "available"


def test_deregistration_protection_without_cooldown(base_ami: str) -> None:
    api.enable_deregistration_protection(base_ami)
    with pytest.raises(Forbidden):
        api.deregister_image(base_ami)
    api.disable_deregistration_protection(base_ami)
    assert api.get_image(base_ami).deregistration_protection == "disabled"
    api.deregister_image(base_ami)
    with pytest.raises(Conflict):
        api.assert_launchable(base_ami)
    assert api.describe_images() == []
    assert [i.id for i in api.describe_images(filters={"state": ["deregistered"]})] == [base_ami]


def test_launch_permissions_and_block_public_access(base_ami: str) -> None:
    org = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
    ou = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-abcdefgh"
    perms = api.modify_launch_permission(
        base_ami, add=[{"UserId": "111122223333"}, {"OrganizationArn": org}, {"OrganizationalUnitArn": ou}]
    )
    assert {"UserId": "111122223333"} in perms and len(perms) == 3
    assert not api.get_image(base_ami).public
    api.modify_launch_permission(base_ami, add=[{"Group": "all"}])
    assert api.get_image(base_ami).to_ec2()["Public"] is True
    assert [i.id for i in api.describe_images(filters={"is-public": ["true"]})] == [base_ami]
    api.modify_launch_permission(base_ami, remove=[{"Group": "all"}, {"UserId": "111122223333"}])
    assert not api.get_image(base_ami).public
    api.set_image_block_public_access("block-new-sharing")
    with pytest.raises(Forbidden):
        api.modify_launch_permission(base_ami, add=[{"Group": "all"}])
    assert not api.get_image(base_ami).public
    with pytest.raises(InvalidInput):
        api.modify_launch_permission(base_ami, add=[{"UserId": "not-an-account"}])


def test_tags_and_last_launched(base_ami: str) -> None:
    snap = api.get_image(base_ami).snapshot_ids[0]
    api.create_tags(base_ami, {"env": "prod", "owner": "me"})
    api.create_tags(snap, {"env": "prod"})
    api.delete_tags(base_ami, {"owner": "someone-else"})  # value mismatch: kept
    api.delete_tags(base_ami, ["env"])
    assert api.get_image(base_ami).tags == {"owner": "me"}
    assert api.get_snapshot(snap).tags == {"env": "prod"}
    with pytest.raises(NotFound):
        api.create_tags("ami-0123456789abcdef0", {"a": "b"})
    now = utcnow()
    api.set_last_launched(base_ami, now)
    assert api.get_image(base_ami).last_launched_time == now
