"""DescribeImages for a caller (Owners, ExecutableUsers, deprecated and disabled, response fields), the
image attributes, image block public access, and bad input refused with EC2's codes, changing nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from kiln.db.base import utcnow
from kiln.ec2_errors import (
    InvalidAMIAttributeItemValue,
    InvalidAMIIDNotFound,
    InvalidParameterValue,
    InvalidUserIDMalformed,
    NotAuthorizedForImages,
    OperationNotPermitted,
)
from kiln.home import DEFAULT_ACCOUNT
from kiln.services.accounts import accounts
from kiln.services.ec2 import images
from kiln.store import api

OWNER = DEFAULT_ACCOUNT
PEER = "210987654321"
AMAZON = "137112412989"
ORG = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
OU = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-abcdefgh"
BPA_MESSAGE = (
    "You can't publicly share this image because block public access for AMIs is enabled for this account. "
    "To publicly share the image, you must call the DisableImageBlockPublicAccess API."
)


@pytest.fixture
def rootfs(busybox_dir: Path) -> Path:
    accounts.create_account("peer", account_id=PEER)
    accounts.create_account("amazon", account_id=AMAZON, image_owner_alias="amazon")
    return busybox_dir


def _import(rootfs: Path, name: str, account: str = OWNER, **kwargs: object) -> str:
    return str(images.import_image(rootfs, name=name, account=account, **kwargs)["ImageId"])  # type: ignore[arg-type]


def _ids(**kwargs: object) -> list[str]:
    return sorted(image["ImageId"] for image in images.describe_images(**kwargs)["Images"])  # type: ignore[arg-type]


def test_owners_executable_users_and_what_each_caller_sees(rootfs: Path) -> None:
    mine = _import(rootfs, "mine")
    shared = _import(rootfs, "shared")
    public = _import(rootfs, "public")
    amazon = _import(rootfs, "amzn-linux", account=AMAZON)
    images.modify_launch_permission(shared, add=[{"UserId": PEER}])
    images.modify_launch_permission(public, add=[{"Group": "all"}])
    images.modify_launch_permission(amazon, add=[{"Group": "all"}], account=AMAZON)

    assert _ids() == sorted([mine, shared, public, amazon])
    assert _ids(account=PEER) == sorted([shared, public, amazon])
    assert _ids(owners=["self"]) == sorted([mine, shared, public])
    assert _ids(owners=["amazon"], account=PEER) == [amazon]
    assert _ids(owners=[AMAZON, "self"], account=PEER) == [amazon]
    assert _ids(executable_users=["all"]) == sorted([public, amazon])
    assert _ids(executable_users=["self"], account=PEER) == [shared]
    assert _ids(executable_users=[PEER]) == [shared]
    assert _ids(filters={"owner-alias": ["amazon"]}) == [amazon]
    assert _ids(filters={"is-public": ["false"]}, account=PEER) == [shared]

    amazon_image = images.describe_image(amazon, account=PEER)
    assert amazon_image["ImageOwnerAlias"] == "amazon" and amazon_image["Public"] is True
    assert "ImageOwnerAlias" not in images.describe_image(mine)
    for bad in (["nobody"], ["12345"], ["self", "amazon.com"]):
        with pytest.raises(InvalidUserIDMalformed) as caught:
            images.describe_images(owners=bad)
        assert caught.value.code == "InvalidUserID.Malformed"
    with pytest.raises(InvalidUserIDMalformed):
        images.describe_images(executable_users=["everyone"])


def test_deprecated_hidden_from_others_but_not_from_the_owner_disabled_only_for_the_owner(rootfs: Path) -> None:
    old = _import(rootfs, "old")
    images.modify_launch_permission(old, add=[{"UserId": PEER}])
    images.enable_image_deprecation(old, utcnow() - timedelta(minutes=1))
    assert _ids() == [old]  # the owner always sees its own
    assert images.describe_images()["Images"][0]["DeprecationTime"].endswith("Z")
    assert _ids(account=PEER) == []
    assert _ids(account=PEER, include_deprecated=True) == [old]
    assert _ids(account=PEER, image_ids=[old]) == [old]  # asked for by id

    images.disable_image(old)
    assert _ids() == []
    assert _ids(include_disabled=True) == [old]
    assert _ids(account=PEER, include_disabled=True, include_deprecated=True) == []  # disabling removed the grant


def test_response_fields(rootfs: Path) -> None:
    ami = _import(rootfs, "fields")
    images.enable_deregistration_protection(ami, with_cooldown=True)
    api.set_last_launched(ami, utcnow())
    image = images.describe_images(image_ids=[ami])["Images"][0]
    assert image["Public"] is False
    assert image["DeregistrationProtection"] == "enabled-with-cooldown"
    assert image["LastLaunchedTime"].endswith("Z")
    assert "DeprecationTime" not in image and "ImageOwnerAlias" not in image


def test_image_attributes_describe_modify_reset(rootfs: Path) -> None:
    ami = _import(rootfs, "attributes", description="first")
    images.modify_image_attribute(
        ami, attribute="launchPermission", operation_type="add", user_ids=[PEER, OWNER], organization_arns=[ORG]
    )
    images.modify_image_attribute(ami, launch_permission={"Add": [{"OrganizationalUnitArn": OU}]})
    described = images.describe_image_attribute(ami, "launchPermission")
    # The owner's own id is never a grant (it always may launch).
    assert described == {
        "ImageId": ami,
        "LaunchPermissions": [{"OrganizationArn": ORG}, {"OrganizationalUnitArn": OU}, {"UserId": PEER}],
    }
    images.modify_image_attribute(ami, attribute="launchPermission", operation_type="remove", organization_arns=[ORG])
    assert {"OrganizationArn": ORG} not in images.describe_image_attribute(ami, "launchPermission")["LaunchPermissions"]
    images.modify_image_attribute(ami, description="second")
    assert images.describe_image_attribute(ami, "description")["Description"] == {"Value": "second"}
    assert images.describe_image_attribute(ami, "kernel") == {"ImageId": ami, "KernelId": {}}
    assert images.describe_image_attribute(ami, "lastLaunchedTime") == {"ImageId": ami, "LastLaunchedTime": {}}
    assert images.describe_image_attribute(ami, "deregistrationProtection")["DeregistrationProtection"] == {
        "Value": "disabled"
    }
    assert images.describe_image_attribute(ami, "productCodes") == {"ImageId": ami, "ProductCodes": []}
    mapping = images.describe_image_attribute(ami, "blockDeviceMapping")["BlockDeviceMappings"]
    assert mapping[0]["Ebs"]["SnapshotId"].startswith("snap-")

    with pytest.raises(NotAuthorizedForImages):  # the peer sees it (shared) but does not own it
        images.describe_image_attribute(ami, "launchPermission", account=PEER)
    with pytest.raises(InvalidParameterValue):
        images.describe_image_attribute(ami, "launchPermissions")
    with pytest.raises(InvalidParameterValue):
        images.reset_image_attribute(ami, "description")
    images.reset_image_attribute(ami, "launchPermission")
    assert images.describe_image_attribute(ami, "launchPermission")["LaunchPermissions"] == []
    with pytest.raises(InvalidAMIIDNotFound):  # reset: not shared any more
        images.describe_image(ami, account=PEER)


def test_bad_launch_permissions_are_refused_with_ec2s_codes_and_change_nothing(rootfs: Path) -> None:
    ami = _import(rootfs, "bad-input")
    images.modify_launch_permission(ami, add=[{"UserId": PEER}])
    cases = [
        ({"UserId": "12345"}, InvalidAMIAttributeItemValue, "InvalidAMIAttributeItemValue"),
        ({"UserId": "not-an-account"}, InvalidAMIAttributeItemValue, "InvalidAMIAttributeItemValue"),
        ({"Group": "everyone"}, InvalidAMIAttributeItemValue, "InvalidAMIAttributeItemValue"),
        ({"OrganizationArn": "o-abcdefghij"}, InvalidParameterValue, "InvalidParameterValue"),
        ({"OrganizationalUnitArn": "ou-ab12-abcdefgh"}, InvalidParameterValue, "InvalidParameterValue"),
        ({"OrganizationArn": OU}, InvalidParameterValue, "InvalidParameterValue"),
        ({"UserId": PEER, "Group": "all"}, InvalidParameterValue, "InvalidParameterValue"),
        ({"Account": PEER}, InvalidParameterValue, "InvalidParameterValue"),
    ]
    for entry, error, code in cases:
        with pytest.raises(error) as caught:
            images.modify_launch_permission(ami, add=[{"Group": "all"}, entry], remove=[{"UserId": PEER}])
        assert caught.value.code == code
    assert images.describe_image_attribute(ami, "launchPermission")["LaunchPermissions"] == [{"UserId": PEER}]
    with pytest.raises(InvalidParameterValue):
        images.modify_image_attribute(ami, attribute="launchPermission", operation_type="share", user_ids=[PEER])
    with pytest.raises(InvalidAMIIDNotFound):
        images.modify_launch_permission("ami-0123456789abcdef0", add=[{"UserId": PEER}])


def test_block_public_access_per_account_and_region(rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    already = _import(rootfs, "already-public")
    other = _import(rootfs, "not-yet-public")
    images.modify_launch_permission(already, add=[{"Group": "all"}])
    assert images.get_image_block_public_access_state() == {
        "ImageBlockPublicAccessState": "unblocked", "ManagedBy": "account"
    }
    assert images.enable_image_block_public_access() == {"ImageBlockPublicAccessState": "block-new-sharing"}

    with pytest.raises(OperationNotPermitted) as refused:
        images.modify_launch_permission(other, add=[{"Group": "all"}, {"UserId": PEER}])
    assert refused.value.message == BPA_MESSAGE
    assert (refused.value.account, refused.value.region) == (OWNER, "local")
    assert images.describe_image_attribute(other, "launchPermission")["LaunchPermissions"] == []  # nothing changed
    assert images.describe_image(already)["Public"] is True  # existing public AMIs stay public
    images.modify_launch_permission(other, add=[{"UserId": PEER}])  # accounts, orgs and OUs are unaffected
    images.modify_launch_permission(already, remove=[{"Group": "all"}])  # making private is always allowed
    with pytest.raises(OperationNotPermitted):
        images.modify_launch_permission(already, add=[{"Group": "all"}])

    # Per account and per region.
    assert images.get_image_block_public_access_state(account=PEER)["ImageBlockPublicAccessState"] == "unblocked"
    assert images.get_image_block_public_access_state("us-east-1")["ImageBlockPublicAccessState"] == "unblocked"
    theirs = _import(rootfs, "theirs", account=PEER)
    images.modify_launch_permission(theirs, add=[{"Group": "all"}], account=PEER)

    with pytest.raises(InvalidParameterValue):
        images.enable_image_block_public_access("unblocked")
    assert images.disable_image_block_public_access() == {"ImageBlockPublicAccessState": "unblocked"}
    assert images.modify_launch_permission(other, add=[{"Group": "all"}])["LaunchPermissions"] == [
        {"Group": "all"}, {"UserId": PEER}
    ]

    # The state of an account never set is configurable (AWS's default for new accounts is not confirmed).
    monkeypatch.setenv("KILN_IMAGE_BLOCK_PUBLIC_ACCESS_DEFAULT", "block-new-sharing")
    assert images.get_image_block_public_access_state(account=PEER)["ImageBlockPublicAccessState"] == (
        "block-new-sharing"
    )
    with pytest.raises(OperationNotPermitted):
        images.modify_launch_permission(_import(rootfs, "new", account=PEER), add=[{"Group": "all"}], account=PEER)
    assert images.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"  # set: kept
