"""Launch templates as EC2 keeps them: versions with $Default/$Latest, SourceVersion, default moves only
when asked, describe and delete semantics, EC2's error codes, images checked when a version is made,
and the AMIs they use counted as in use (default and latest versions, resolve:ssm: resolved)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from kiln.db.engine import session
from kiln.ec2_errors import (
    IdempotentParameterMismatch,
    InvalidAMIIDNotFound,
    InvalidLaunchTemplateIdMalformed,
    InvalidLaunchTemplateIdNotFound,
    InvalidLaunchTemplateIdVersionNotFound,
    InvalidLaunchTemplateNameAlreadyExists,
    InvalidLaunchTemplateNameMalformed,
    InvalidLaunchTemplateNameNotFound,
    InvalidParameterCombination,
    InvalidParameterValue,
    MissingParameter,
)
from kiln.model.ids import is_id
from kiln.services.accounts import accounts, regions
from kiln.services.common.references import images_used_by_launch_templates
from kiln.services.ec2 import images
from kiln.services.fleet import launch_templates as lt
from kiln.services.fleet.launch_templates import TemplateRef
from kiln.services.parameters import parameter_store as ssm
from kiln.services.parameters.errors import ParameterNotFound

PEER = "210987654321"


@pytest.fixture
def amis(busybox_dir: Path) -> list[str]:
    return [str(images.import_image(busybox_dir, name=f"web-{n}")["ImageId"]) for n in (1, 2)]


def _ref(template: dict) -> TemplateRef:
    return TemplateRef(launch_template_id=template["LaunchTemplateId"])


def _everything() -> tuple:
    templates = lt.describe_launch_templates()["LaunchTemplates"]
    versions = lt.describe_launch_template_versions()["LaunchTemplateVersions"]
    return templates, versions


def test_versions_default_latest_source_version_and_modify(amis: list[str]) -> None:
    web1, web2 = amis
    created = lt.create_launch_template(
        "web", {"ImageId": web1, "InstanceType": "t3.micro",
                "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-1", "VolumeSize": 8}}]},
        version_description="first", tags={"team": "web"},
    )["LaunchTemplate"]
    assert is_id(created["LaunchTemplateId"], "lt")
    assert (created["DefaultVersionNumber"], created["LatestVersionNumber"]) == (1, 1)
    assert created["Tags"] == [{"Key": "team", "Value": "web"}]

    # Without SourceVersion a version holds only what it is given; with it, the source's members too.
    bare = lt.create_launch_template_version(_ref(created), {"ImageId": web2})["LaunchTemplateVersion"]
    assert (bare["VersionNumber"], bare["DefaultVersion"], bare["LaunchTemplateData"]) == (2, False, {"ImageId": web2})
    inherited = lt.create_launch_template_version(
        TemplateRef(launch_template_name="web"), {"ImageId": web2}, source_version="1", version_description="v3",
    )["LaunchTemplateVersion"]["LaunchTemplateData"]
    assert inherited["InstanceType"] == "t3.micro" and inherited["ImageId"] == web2
    assert inherited["BlockDeviceMappings"] == [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}]

    template = lt.describe_launch_templates(launch_template_names=["web"])["LaunchTemplates"][0]
    assert (template["DefaultVersionNumber"], template["LatestVersionNumber"]) == (1, 3)  # default did not move
    picked = lt.describe_launch_template_versions(_ref(created), versions=["$Latest", "$Default"])
    assert [v["VersionNumber"] for v in picked["LaunchTemplateVersions"]] == [1, 3]
    assert lt.modify_launch_template(_ref(created), default_version="3")["LaunchTemplate"]["DefaultVersionNumber"] == 3
    ranged = lt.describe_launch_template_versions(_ref(created), min_version=2, max_version=3)
    assert [(v["VersionNumber"], v["DefaultVersion"]) for v in ranged["LaunchTemplateVersions"]] == [
        (2, False), (3, True)]
    assert [v["VersionNumber"] for v in lt.describe_launch_template_versions(
        _ref(created), filters={"image-id": [web1]})["LaunchTemplateVersions"]] == [1]

    # Deleting versions: never the default; numbers are never reused.
    result = lt.delete_launch_template_versions(_ref(created), ["2", "3", "9"])
    assert [v["VersionNumber"] for v in result["SuccessfullyDeletedLaunchTemplateVersions"]] == [2]
    assert [(v.get("VersionNumber"), v["ResponseError"]["Code"]) for v in
            result["UnsuccessfullyDeletedLaunchTemplateVersions"]] == [
        (3, "unexpectedError"), (None, "launchTemplateVersionDoesNotExist")]
    assert lt.create_launch_template_version(_ref(created), {"ImageId": web1})["LaunchTemplateVersion"][
        "VersionNumber"] == 4


def test_unknown_templates_and_versions_get_ec2s_codes_and_change_nothing(amis: list[str]) -> None:
    created = lt.create_launch_template("web", {"ImageId": amis[0]})["LaunchTemplate"]
    before = _everything()
    with pytest.raises(InvalidLaunchTemplateIdVersionNotFound) as unknown_version:
        lt.modify_launch_template(_ref(created), default_version="7")
    assert created["LaunchTemplateId"] in unknown_version.value.message
    with pytest.raises(InvalidLaunchTemplateIdVersionNotFound):
        lt.create_launch_template_version(_ref(created), {"ImageId": amis[1]}, source_version="5")
    with pytest.raises(InvalidLaunchTemplateIdVersionNotFound):
        lt.describe_launch_template_versions(_ref(created), versions=["2"])
    with pytest.raises(InvalidLaunchTemplateNameAlreadyExists):
        lt.create_launch_template("web", {"ImageId": amis[1]})
    with pytest.raises(InvalidLaunchTemplateIdMalformed):
        lt.describe_launch_templates(launch_template_ids=["lt-123"])
    with pytest.raises(InvalidLaunchTemplateIdNotFound):
        lt.describe_launch_templates(launch_template_ids=["lt-0123456789abcdef0"])
    with pytest.raises(InvalidLaunchTemplateNameNotFound):
        lt.describe_launch_templates(launch_template_names=["db-servers"])
    with pytest.raises(InvalidLaunchTemplateNameMalformed):
        lt.create_launch_template("w", {"ImageId": amis[0]})
    with pytest.raises(InvalidParameterCombination):
        lt.modify_launch_template(TemplateRef(created["LaunchTemplateId"], "web"), default_version="1")
    with pytest.raises(MissingParameter):
        lt.delete_launch_template(TemplateRef())
    with pytest.raises(InvalidParameterValue) as unknown_member:
        lt.create_launch_template_version(_ref(created), {"ImageID": amis[1]})
    assert unknown_member.value.location == "LaunchTemplateData.ImageID"
    with pytest.raises(InvalidParameterValue, match="not valid base64"):
        lt.create_launch_template_version(_ref(created), {"UserData": "not base64!"})
    with pytest.raises(InvalidParameterValue, match=r"instance type 'x9\.huge'"):
        lt.create_launch_template_version(_ref(created), {"InstanceType": "x9.huge"})
    with pytest.raises(InvalidParameterValue, match="ResourceType 'image'"):
        lt.create_launch_template_version(
            _ref(created), {"TagSpecifications": [{"ResourceType": "image", "Tags": [{"Key": "a", "Value": "b"}]}]})
    assert _everything() == before

    # $Latest of a deleted template: the template is gone, not merely the version.
    lt.delete_launch_template(_ref(created))
    with pytest.raises(InvalidLaunchTemplateIdNotFound):
        lt.describe_launch_template_versions(_ref(created), versions=["$Latest"])
    assert _everything() == ([], [])


def test_images_are_checked_when_a_version_is_made(amis: list[str]) -> None:
    accounts.create_account("peer", account_id=PEER)
    regions.create_region("eu-west-1")
    web1 = amis[0]
    # Another account's private AMI does not exist for the peer; nor does an AMI of another region.
    with pytest.raises(InvalidAMIIDNotFound) as hidden:
        lt.create_launch_template("peer-web", {"ImageId": web1}, account=PEER)
    assert hidden.value.account == PEER
    with pytest.raises(InvalidAMIIDNotFound):
        lt.create_launch_template("web", {"ImageId": web1}, region="eu-west-1")
    with pytest.raises(InvalidParameterValue, match="neither an AMI id"):
        lt.create_launch_template("web", {"ImageId": "web-1"})
    assert lt.describe_launch_templates(account=PEER)["LaunchTemplates"] == []
    images.modify_launch_permission(web1, add=[{"UserId": PEER}])
    shared = lt.create_launch_template("peer-web", {"ImageId": web1}, account=PEER)["LaunchTemplate"]
    # Templates belong to their account: the owner does not see the peer's.
    with pytest.raises(InvalidLaunchTemplateIdNotFound):
        lt.describe_launch_templates(launch_template_ids=[shared["LaunchTemplateId"]])

    with pytest.raises(ParameterNotFound):
        lt.create_launch_template("ssm-web", {"ImageId": "resolve:ssm:/golden/web/latest"})
    ssm.put_parameter("/golden/web/latest", web1, data_type="aws:ec2:image")
    created = lt.create_launch_template("ssm-web", {"ImageId": "resolve:ssm:/golden/web/latest"})["LaunchTemplate"]
    kept = lt.describe_launch_template_versions(_ref(created))["LaunchTemplateVersions"][0]
    assert kept["LaunchTemplateData"]["ImageId"] == "resolve:ssm:/golden/web/latest"  # the string, not the AMI
    resolved = lt.describe_launch_template_versions(_ref(created), resolve_alias=True)["LaunchTemplateVersions"][0]
    assert resolved["LaunchTemplateData"]["ImageId"] == web1


def test_client_token_makes_create_idempotent(amis: list[str]) -> None:
    first = lt.create_launch_template("web", {"ImageId": amis[0]}, client_token="t-1")["LaunchTemplate"]
    again = lt.create_launch_template("web", {"ImageId": amis[0]}, client_token="t-1")["LaunchTemplate"]
    assert again["LaunchTemplateId"] == first["LaunchTemplateId"]
    with pytest.raises(IdempotentParameterMismatch):
        lt.create_launch_template("web", {"ImageId": amis[1]}, client_token="t-1")


def test_default_and_latest_versions_count_as_in_use_also_through_parameters(amis: list[str]) -> None:
    web1, web2 = amis
    created = lt.create_launch_template("web", {"ImageId": web1})["LaunchTemplate"]
    lt.create_launch_template_version(_ref(created), {"ImageId": web2})
    lt.create_launch_template_version(_ref(created), {"InstanceType": "t3.small"})  # latest: no image
    ssm.put_parameter("/golden/web/latest", web1, data_type="aws:ec2:image")
    via_ssm = lt.create_launch_template("ssm-web", {"ImageId": "resolve:ssm:/golden/web/latest"})["LaunchTemplate"]
    with session() as db:
        users = images_used_by_launch_templates(db)
    template_id = created["LaunchTemplateId"]
    assert users[web1] == [
        f"launch template {template_id} (web) version 1 ($Default)",
        f"launch template {via_ssm['LaunchTemplateId']} (ssm-web) version 1 ($Default/$Latest)"
        " through parameter /golden/web/latest",
    ]
    assert web2 not in users  # version 2 is neither the default nor the latest

    ssm.put_parameter("/golden/web/latest", web2, overwrite=True)  # the parameter now names web2
    lt.modify_launch_template(_ref(created), default_version="2")
    with session() as db:
        users = images_used_by_launch_templates(db)
    assert web1 not in users
    assert len(users[web2]) == 2

    from kiln.services.lifecycle.candidates import _users_by_image

    assert _users_by_image()[web2] == users[web2]
    lt.delete_launch_template(_ref(created))
    with session() as db:
        assert len(images_used_by_launch_templates(db)[web2]) == 1


def test_user_data_and_tag_specifications_are_kept(amis: list[str]) -> None:
    data = {"ImageId": amis[0], "UserData": base64.b64encode(b"#!/bin/sh\necho hi\n").decode(),
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}]}
    created = lt.create_launch_template("web", data)["LaunchTemplate"]
    assert lt.describe_launch_template_versions(_ref(created))["LaunchTemplateVersions"][0][
        "LaunchTemplateData"] == data


def test_a_build_adds_an_image_version_from_the_default_and_makes_it_the_default(amis: list[str]) -> None:
    web1, web2 = amis
    created = lt.create_launch_template("web", {"ImageId": web1, "InstanceType": "t3.small"})["LaunchTemplate"]
    lt.create_launch_template_version(_ref(created), {"ImageId": web1, "InstanceType": "t3.large"})  # not default
    added = lt.add_image_version(_ref(created), web2, description="web-2 build")["LaunchTemplateVersion"]
    assert (added["VersionNumber"], added["DefaultVersion"]) == (3, True)
    assert added["LaunchTemplateData"] == {"ImageId": web2, "InstanceType": "t3.small"}  # from $Default
    assert lt.describe_launch_templates()["LaunchTemplates"][0]["DefaultVersionNumber"] == 3
    kept = lt.add_image_version(_ref(created), web1, set_default=False)["LaunchTemplateVersion"]
    assert (kept["VersionNumber"], kept["DefaultVersion"]) == (4, False)
    with pytest.raises(InvalidAMIIDNotFound):
        lt.add_image_version(_ref(created), "ami-0123456789abcdef0")
    template = lt.describe_launch_templates()["LaunchTemplates"][0]
    assert (template["DefaultVersionNumber"], template["LatestVersionNumber"]) == (3, 4)
