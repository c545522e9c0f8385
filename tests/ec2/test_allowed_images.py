"""EC2 Allowed AMIs per account and region: criteria checked when given and judged OR-of-ANDs against
one injectable clock (KILN_CLOCK); ``enabled`` refuses with EC2's code and hides other accounts'
disallowed AMIs, ``audit-mode`` records; the account's own AMIs are exempt unless kiln's stricter mode
says otherwise; DescribeImages shows ImageAllowed."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiln.db.base import clock_now
from kiln.ec2_errors import InvalidAMIIDNotFound, InvalidParameterValue, NotAuthorizedForImages
from kiln.errors import InvalidInput
from kiln.home import DEFAULT_ACCOUNT
from kiln.services.accounts import accounts
from kiln.services.common.events import list_events
from kiln.services.ec2 import allowed_images as allowed
from kiln.services.ec2 import images, instances
from kiln.services.ec2.allowed_criteria import judge
from kiln.services.fleet import launch_templates as lt
from kiln.store import api as store

PEER = "210987654321"
PUBLISHER = "137112412989"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")


@pytest.fixture
def world(busybox_dir: Path) -> dict[str, str]:
    """The peer sees a public AMI of an ``amazon`` publisher, one the owner shared, and one of its own."""
    accounts.create_account("peer", account_id=PEER)
    accounts.create_account("amazon", account_id=PUBLISHER, image_owner_alias="amazon")
    amazon = str(images.import_image(busybox_dir, name="al2023-ami-minimal", account=PUBLISHER)["ImageId"])
    images.modify_launch_permission(amazon, add=[{"Group": "all"}], account=PUBLISHER)
    tags = {"kiln:Approved": "true", "ec2:SharedTag/approved": "true"}
    shared = str(images.import_image(busybox_dir, name="golden-web-1", tags=tags)["ImageId"])
    images.modify_launch_permission(shared, add=[{"UserId": PEER}])
    own = str(images.import_image(busybox_dir, name="peer-scratch", account=PEER)["ImageId"])
    return {"amazon": amazon, "shared": shared, "own": own}


def _allowed_ids(**kwargs: object) -> dict[str, bool]:
    return {i["ImageId"]: i["ImageAllowed"] for i in images.describe_images(account=PEER, **kwargs)["Images"]}


def test_bad_criteria_get_one_error_naming_the_place_and_change_nothing() -> None:
    cases = [
        ([{}], "ImageCriteria[0]", "matches nothing"),
        ([{"ImageProviders": ["amazon", "none"]}], "ImageCriteria[0].ImageProviders", "only image provider"),
        ([{"ImageProviders": ["micro-soft"]}], "ImageCriteria[0].ImageProviders", "'micro-soft'"),
        ([{"ImageNames": ["a?"]}], "ImageCriteria[0].ImageNames", "at least 3"),
        ([{"ImageNames": ["web$"]}], "ImageCriteria[0].ImageNames", "'web$'"),
        ([{"CreationDateCondition": {"MaximumDaysSinceCreated": -1}}],
         "ImageCriteria[0].CreationDateCondition.MaximumDaysSinceCreated", "0 or more"),
        ([{"ImageProviders": ["amazon"]}, {"ImageName": ["x"]}], "ImageCriteria[1].ImageName", "unknown member"),
        ([{"ScanResultCondition": {"MaximumSeverityLabel": "LOW"}}],
         "ImageCriteria[0].ScanResultCondition.MaximumSeverityLabel", "'LOW' is not one of"),
        ([{"ScanResultCondition": {"MaxDaysSinceHighFixAvailable": -2}}],
         "ImageCriteria[0].ScanResultCondition.MaxDaysSinceHighFixAvailable", "whole number of days"),
        ([{"ScanResultCondition": {"MaxDaysSinceSevereFix": 2}}],
         "ImageCriteria[0].ScanResultCondition.MaxDaysSinceSevereFix", "unknown member"),
        ([{"ImageProviders": ["amazon"]}] * 11, "ImageCriteria", "limit is 10"),
    ]
    for criteria, where, words in cases:
        with pytest.raises(InvalidParameterValue) as refused:
            allowed.replace_image_criteria(criteria, account=PEER)
        assert (refused.value.location, words in refused.value.message) == (where, True), refused.value
    assert allowed.get_allowed_images_settings(account=PEER)["ImageCriteria"] == []
    with pytest.raises(InvalidParameterValue):
        allowed.enable_allowed_images_settings("on", account=PEER)
    assert allowed.get_allowed_images_settings(account=PEER)["State"] == "disabled"


def test_providers_names_and_tags_decide_and_enabled_mode_refuses_and_hides(
    world: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed.replace_image_criteria([{"ImageProviders": ["amazon"]},
                                    {"ImageNames": ["golden-*"], "RequiredTags": [
                                        {"Key": "kiln:Approved", "Value": "false"}]}], account=PEER)
    # Disabled: no ImageAllowed at all.
    assert all("ImageAllowed" not in i for i in images.describe_images(account=PEER)["Images"])

    allowed.enable_allowed_images_settings("audit-mode", account=PEER)
    assert _allowed_ids() == {world["amazon"]: True, world["shared"]: False, world["own"]: True}
    assert set(_allowed_ids(filters={"image-allowed": ["false"]})) == {world["shared"]}
    lt.create_launch_template("audited", {"ImageId": world["shared"]}, account=PEER)  # allowed, but recorded
    event = list_events()[-1]
    assert (event["kind"], event["detail"]["action"], event["detail"]["imageId"]) == (
        "EC2 Allowed AMIs Audit", "CreateLaunchTemplateVersion", world["shared"])
    assert "criterion 2: tag kiln:Approved=false is missing" in event["detail"]["reason"]

    allowed.enable_allowed_images_settings("enabled", account=PEER)
    assert _allowed_ids() == {world["amazon"]: True, world["own"]: True}  # the shared one is not discoverable
    with pytest.raises(InvalidAMIIDNotFound) as refused:
        lt.create_launch_template("web", {"ImageId": world["shared"]}, account=PEER)
    assert "criterion 1: provider 123456789012 is not one of amazon" in (refused.value.hint or "")
    assert refused.value.account == PEER
    assert [t["LaunchTemplateName"] for t in lt.describe_launch_templates(account=PEER)["LaunchTemplates"]] == [
        "audited"]
    monkeypatch.setenv("KILN_DISALLOWED_IMAGE_ERROR", "AuthFailure")
    with pytest.raises(NotAuthorizedForImages):
        lt.create_launch_template("web", {"ImageId": world["shared"]}, account=PEER)
    monkeypatch.delenv("KILN_DISALLOWED_IMAGE_ERROR")

    # Criteria replaced as a whole. Another account judges the tags it sees: only ec2:SharedTag/ ones.
    allowed.replace_image_criteria([{"RequiredTags": [{"Key": "kiln:Approved", "Value": "true"}]}], account=PEER)
    assert _allowed_ids() == {world["own"]: True}
    allowed.replace_image_criteria([{"RequiredTags": [{"Key": "ec2:SharedTag/approved", "Value": "true"}]}],
                                   account=PEER)
    assert _allowed_ids() == {world["shared"]: True, world["own"]: True}
    # Other accounts and regions are untouched; disabling keeps the criteria.
    assert "ImageAllowed" not in images.describe_image(world["shared"])
    assert allowed.disable_allowed_images_settings(account=PEER) == {"AllowedImagesSettingsState": "disabled"}
    assert allowed.get_allowed_images_settings(account=PEER)["ImageCriteria"] == [
        {"RequiredTags": [{"Key": "ec2:SharedTag/approved", "Value": "true"}]}]


def test_ages_are_judged_against_the_one_clock(world: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    allowed.replace_image_criteria([{"CreationDateCondition": {"MaximumDaysSinceCreated": 30}}], account=PEER)
    allowed.enable_allowed_images_settings("audit-mode", account=PEER)
    assert _allowed_ids()[world["shared"]] is True
    monkeypatch.setenv("KILN_CLOCK", "+31d")
    assert abs(clock_now() - (datetime.now(UTC) + timedelta(days=31))) < timedelta(minutes=1)
    assert _allowed_ids() == {world["amazon"]: False, world["shared"]: False, world["own"]: True}
    monkeypatch.setenv("KILN_CLOCK", "2000-01-01T00:00:00Z")  # before they were made: age is negative
    assert _allowed_ids()[world["shared"]] is True
    monkeypatch.setenv("KILN_CLOCK", "next tuesday")
    with pytest.raises(InvalidInput, match="KILN_CLOCK"):
        images.describe_images(account=PEER)

    monkeypatch.delenv("KILN_CLOCK")
    images.enable_image_deprecation(world["shared"], datetime.now(UTC) + timedelta(minutes=2))
    allowed.replace_image_criteria([{"DeprecationTimeCondition": {"MaximumDaysSinceDeprecated": 1}}], account=PEER)
    assert _allowed_ids(include_deprecated=True)[world["shared"]] is True
    monkeypatch.setenv("KILN_CLOCK", "+3d")
    assert _allowed_ids(include_deprecated=True)[world["shared"]] is False


def test_patched_within_days_judges_the_build_date(world: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    allowed.replace_image_criteria([{"PatchedWithinDays": 30}], account=PEER)
    allowed.enable_allowed_images_settings("audit-mode", account=PEER)
    assert _allowed_ids()[world["shared"]] is True
    monkeypatch.setenv("KILN_CLOCK", "+31d")
    assert _allowed_ids()[world["shared"]] is False
    image = store.get_image(world["shared"])
    assert "patched 31 days ago (its build date), more than 30" in judge(
        [{"PatchedWithinDays": 30}], image, PEER, clock_now())[1]


def test_own_images_are_exempt_unless_the_stricter_mode_is_chosen(world: dict[str, str]) -> None:
    allowed.replace_image_criteria([{"ImageProviders": ["amazon"]}], account=PEER)
    allowed.enable_allowed_images_settings("enabled", account=PEER)
    lt.create_launch_template("own", {"ImageId": world["own"]}, account=PEER)
    allowed.enable_allowed_images_settings("enabled", include_own_images=True, account=PEER)
    with pytest.raises(InvalidAMIIDNotFound):
        lt.create_launch_template("own-2", {"ImageId": world["own"]}, account=PEER)
    assert _allowed_ids()[world["own"]] is False  # still listed for its owner, marked disallowed
    assert allowed.get_allowed_images_settings(account=PEER)["Kiln"]["IncludeOwnImages"] is True
    # Only the peer's settings changed: the default account launches templates as before.
    assert allowed.get_allowed_images_settings()["State"] == "disabled"
    lt.create_launch_template("owner-web", {"ImageId": world["shared"]}, account=DEFAULT_ACCOUNT)


def test_enabled_mode_refuses_a_group_of_a_disallowed_image(world: dict[str, str]) -> None:
    from kiln.services.fleet import autoscaling
    from kiln.services.fleet.autoscaling_errors import ValidationError

    template = lt.create_launch_template("web", {"ImageId": world["shared"]}, account=PEER)["LaunchTemplate"]
    allowed.replace_image_criteria([{"ImageProviders": ["amazon"]}], account=PEER)
    allowed.enable_allowed_images_settings("enabled", account=PEER)
    spec = {"LaunchTemplateId": template["LaunchTemplateId"], "Version": "$Latest"}
    with pytest.raises(ValidationError) as refused:
        autoscaling.create_auto_scaling_group("web-asg", launch_template=spec, min_size=1, max_size=1,
                                              account=PEER)
    assert world["shared"] in str(refused.value) and "allowed images" in (refused.value.hint or "")
    assert autoscaling.describe_auto_scaling_groups(account=PEER)["AutoScalingGroups"] == []  # nothing made


@needs_root
def test_enabled_mode_refuses_a_launch_and_audit_mode_records_it(world: dict[str, str]) -> None:
    allowed.replace_image_criteria([{"ImageProviders": ["amazon"]}], account=PEER)
    allowed.enable_allowed_images_settings("enabled", account=PEER)
    with pytest.raises(InvalidAMIIDNotFound):
        instances.run_instance(world["shared"], account=PEER)
    assert instances.describe_instances(account=PEER)["Instances"] == []
    allowed.enable_allowed_images_settings("audit-mode", account=PEER)
    instance = instances.run_instance(world["shared"], account=PEER)
    try:
        event = list_events()[-1]
        assert (event["detail"]["action"], event["detail"]["account"]) == ("RunInstances", PEER)
    finally:
        instances.terminate_instance(instance.id)
