"""Sharing evaluated live, as EC2 does: another account cannot see, launch, copy or export an AMI until
its owner shares it (and its snapshot, for copy and export); organization and OU grants follow the
account's membership at the moment of the call; only the owner changes an AMI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiln.ec2_errors import (
    AuthFailure,
    Ec2Error,
    ImageStorageNotAccessible,
    InvalidAMIIDNotFound,
    InvalidInstanceIDNotFound,
    NotAuthorizedForImages,
)
from kiln.home import DEFAULT_ACCOUNT
from kiln.services.accounts import accounts, organizations
from kiln.services.ec2 import images, instances, snapshots

OWNER = DEFAULT_ACCOUNT
PEER = "210987654321"
STRANGER = "310987654321"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")


@pytest.fixture
def rootfs(busybox_dir: Path) -> Path:
    return busybox_dir


@pytest.fixture
def ami(rootfs: Path) -> str:
    """The owner's busybox AMI, with a private tag and a shared one."""
    accounts.create_account("peer", account_id=PEER)
    accounts.create_account("stranger", account_id=STRANGER)
    tags = {"cost-center": "secret", "ec2:SharedTag/team": "platform"}
    return str(images.import_image(rootfs, name="busybox-shared", tags=tags)["ImageId"])


def _snapshot(ami: str) -> str:
    return str(images.describe_image(ami)["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])


def _refused_with(error: Ec2Error, code: str, account: str) -> None:
    assert error.code == code and (error.account, error.region) == (account, "local")


@needs_root
def test_another_account_is_refused_everything_until_shared_then_launches_copies_exports(
    ami: str, tmp_path: Path
) -> None:
    # Not shared: it does not exist for the peer, in exactly the words of an id that does not exist.
    with pytest.raises(InvalidAMIIDNotFound) as hidden:
        images.describe_image(ami, account=PEER)
    _refused_with(hidden.value, "InvalidAMIID.NotFound", PEER)
    with pytest.raises(InvalidAMIIDNotFound) as unknown:
        images.describe_image("ami-0123456789abcdef0", account=PEER)
    assert hidden.value.message == unknown.value.message.replace("ami-0123456789abcdef0", ami)
    assert hidden.value.hint == unknown.value.hint
    assert images.describe_images(account=PEER)["Images"] == []
    with pytest.raises(InvalidAMIIDNotFound):
        images.describe_images(image_ids=[ami], account=PEER)
    with pytest.raises(NotAuthorizedForImages) as launch:
        instances.run_instance(ami, account=PEER)
    assert launch.value.message == f"Not authorized for images: [{ami}]"
    _refused_with(launch.value, "AuthFailure", PEER)
    with pytest.raises(InvalidAMIIDNotFound):
        images.copy_image(ami, name="stolen", account=PEER)
    with pytest.raises(InvalidAMIIDNotFound):
        images.export_image(ami, "tar", tmp_path / "stolen.tar", account=PEER)
    assert not (tmp_path / "stolen.tar").exists()
    assert instances.describe_instances(account=None)["Instances"] == []
    assert [i["ImageId"] for i in images.describe_images(owners=[PEER], include_disabled=True)["Images"]] == []

    images.modify_launch_permission(ami, add=[{"UserId": PEER}])
    seen = images.describe_image(ami, account=PEER)
    assert seen["OwnerId"] == OWNER and seen["Public"] is False
    assert seen["Tags"] == [{"Key": "ec2:SharedTag/team", "Value": "platform"}]  # the owner's other tags stay private
    assert [i["ImageId"] for i in images.describe_images(account=PEER)["Images"]] == [ami]

    # Launching needs no snapshot share: a real instance of the peer.
    instance = instances.run_instance(ami, account=PEER)
    assert instance.account_id == PEER
    assert instances.exec_command(instance.id, ["sh", "-c", "echo shared"], account=PEER)["Stdout"] == "shared\n"
    assert instances.describe_instances(account=OWNER)["Instances"] == []  # the peer's instance, not the owner's
    with pytest.raises(InvalidInstanceIDNotFound) as theirs:
        instances.stop_instances([instance.id], account=OWNER)
    with pytest.raises(InvalidInstanceIDNotFound) as nobodys:
        instances.stop_instances(["i-0123456789abcdef0"], account=OWNER)
    assert str(theirs.value).replace(instance.id, "i-0123456789abcdef0") == str(nobodys.value)
    assert theirs.value.context == nobodys.value.context == f"as account {OWNER}"
    assert instances.describe_instance(instance.id, account=PEER)["State"]["Name"] == "running"
    assert "LastLaunchedTime" in images.describe_image(ami)  # the owner sees when it was launched
    assert "LastLaunchedTime" not in images.describe_image(ami, account=PEER)  # the peer does not
    instances.terminate_instances([instance.id], account=PEER)

    # Copy and export read the storage: refused without createVolumePermission, and nothing is made.
    with pytest.raises(ImageStorageNotAccessible) as storage:
        images.copy_image(ami, name="peer-copy", account=PEER)
    assert storage.value.message == "You do not have permission to access the storage of this ami."
    _refused_with(storage.value, "InvalidRequest", PEER)
    with pytest.raises(ImageStorageNotAccessible):
        images.export_image(ami, "tar", tmp_path / "peer.tar", account=PEER)
    assert images.describe_images(owners=["self"], account=PEER)["Images"] == []

    snapshots.modify_snapshot_attribute(_snapshot(ami), create_volume_permission={"Add": [{"UserId": PEER}]})
    copy = images.copy_image(ami, name="peer-copy", account=PEER)["ImageId"]
    assert images.describe_image(copy, account=PEER)["OwnerId"] == PEER
    with pytest.raises(InvalidAMIIDNotFound):
        images.describe_image(copy, account=STRANGER)  # the copy is the peer's, private
    exported = images.export_image(ami, "tar", tmp_path / "peer.tar", account=PEER)
    assert exported["Size"] > 0

    # Only the owner changes the AMI, and a refusal changes nothing.
    for change in (
        lambda: images.modify_launch_permission(ami, add=[{"UserId": STRANGER}], account=PEER),
        lambda: images.deregister_image(ami, account=PEER),
        lambda: images.disable_image(ami, account=PEER),
        lambda: images.enable_deregistration_protection(ami, account=PEER),
        lambda: images.create_tags(ami, {"owned": "no"}, account=PEER),
        lambda: images.reset_image_attribute(ami, account=PEER),
        lambda: images.describe_image_attribute(ami, "launchPermission", account=PEER),
    ):
        with pytest.raises(AuthFailure) as refused:
            change()
        _refused_with(refused.value, "AuthFailure", PEER)
    owner_view = images.describe_image(ami)
    assert owner_view["State"] == "available" and owner_view["DeregistrationProtection"] == "disabled"
    assert {"Key": "owned", "Value": "no"} not in owner_view["Tags"]  # type: ignore[operator]
    permissions = images.describe_image_attribute(ami, "launchPermission")["LaunchPermissions"]
    assert permissions == [{"UserId": PEER}]

    # Disabling revokes (and enabling does not give it back); deregistering revokes too.
    images.disable_image(ami)
    with pytest.raises(InvalidAMIIDNotFound):
        images.describe_image(ami, account=PEER)
    with pytest.raises(NotAuthorizedForImages):
        instances.run_instance(ami, account=PEER)
    images.enable_image(ami)
    with pytest.raises(NotAuthorizedForImages):
        instances.run_instance(ami, account=PEER)
    images.modify_launch_permission(ami, add=[{"UserId": PEER}])
    images.deregister_image(ami)
    with pytest.raises(NotAuthorizedForImages):
        instances.run_instance(ami, account=PEER)
    with pytest.raises(InvalidAMIIDNotFound):
        images.describe_image(ami, account=PEER)


@pytest.fixture
def organization() -> dict[str, str]:
    """The owner's organization: root > workloads > web; the peer in web, the stranger outside."""
    organizations.create_organization(OWNER)
    root = organizations.list_roots(OWNER)["Roots"][0]["Id"]
    workloads = organizations.create_organizational_unit(OWNER, root, "workloads")["OrganizationalUnit"]
    web = organizations.create_organizational_unit(OWNER, workloads["Id"], "web")["OrganizationalUnit"]
    organizations.add_account(OWNER, PEER)
    organizations.move_account(OWNER, PEER, web["Id"])
    return {
        "root": root,
        "org_arn": organizations.describe_organization(OWNER)["Organization"]["Arn"],
        "workloads_arn": workloads["Arn"],
        "web": web["Id"],
    }


def _sees(ami: str, account: str) -> bool:
    return ami in [image["ImageId"] for image in images.describe_images(account=account)["Images"]]


def test_an_ou_grant_covers_the_ous_below_it_and_follows_moves_at_once(ami: str, organization: dict[str, str]) -> None:
    images.modify_launch_permission(ami, add=[{"OrganizationalUnitArn": organization["workloads_arn"]}])
    assert _sees(ami, PEER)  # the peer is in web, below workloads
    assert images.describe_image(ami, account=PEER)["ImageId"] == ami
    assert not _sees(ami, STRANGER)
    # ExecutableUsers: self counts OU grants; another account's id counts only grants naming it.
    shared_with_me = images.describe_images(executable_users=["self"], account=PEER)["Images"]
    assert [i["ImageId"] for i in shared_with_me] == [ami]
    assert images.describe_images(executable_users=[PEER])["Images"] == []

    organizations.move_account(OWNER, PEER, organization["root"])
    assert not _sees(ami, PEER)  # the very next call: no cache, no delay
    with pytest.raises(InvalidAMIIDNotFound):
        images.describe_image(ami, account=PEER)
    with pytest.raises(NotAuthorizedForImages):
        instances.run_instance(ami, account=PEER)
    organizations.move_account(OWNER, PEER, organization["web"])
    assert _sees(ami, PEER)


def test_an_organization_grant_reaches_every_member_until_it_leaves(ami: str, organization: dict[str, str]) -> None:
    images.modify_launch_permission(ami, add=[{"OrganizationArn": organization["org_arn"]}])
    assert _sees(ami, PEER) and not _sees(ami, STRANGER)
    organizations.add_account(OWNER, STRANGER)
    assert _sees(ami, STRANGER)
    organizations.remove_account(OWNER, PEER)
    assert not _sees(ami, PEER)
    with pytest.raises(NotAuthorizedForImages):
        instances.run_instance(ami, account=PEER)


def test_the_owner_may_share_with_an_organization_it_is_not_in(ami: str) -> None:
    other = organizations.create_organization(STRANGER)["Organization"]
    images.modify_launch_permission(ami, add=[{"OrganizationArn": other["Arn"]}])
    assert _sees(ami, STRANGER) and not _sees(ami, PEER)
    assert organizations.membership(OWNER) == (None, [])


def test_grantees_copies_need_the_snapshot_share_too_also_through_an_ou(
    ami: str, organization: dict[str, str]
) -> None:
    images.modify_launch_permission(ami, add=[{"OrganizationalUnitArn": organization["workloads_arn"]}])
    with pytest.raises(ImageStorageNotAccessible):
        images.copy_image(ami, name="peer-copy", account=PEER)
    snapshot = _snapshot(ami)
    snapshots.modify_snapshot_attribute(
        snapshot, attribute="createVolumePermission", operation_type="add", group_names=["all"]
    )
    assert snapshots.describe_snapshot_attribute(snapshot)["CreateVolumePermissions"] == [{"Group": "all"}]
    assert [s["SnapshotId"] for s in snapshots.describe_snapshots(account=STRANGER)["Snapshots"]] == [snapshot]
    copy = images.copy_image(ami, name="peer-copy", account=PEER)["ImageId"]
    assert images.describe_image(copy, account=PEER)["SourceImageId"] == ami
    snapshots.reset_snapshot_attribute(snapshot)
    assert snapshots.describe_snapshots(account=STRANGER)["Snapshots"] == []
