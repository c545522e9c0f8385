"""boto3's EC2 client against ``kiln serve`` for the fleet: launch templates (create, versions, modify,
describe, delete), RunInstances from a template, and Allowed AMIs settings, with EC2's error codes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")


@pytest.fixture
def ami(kiln_home: Path, busybox_dir: Path) -> str:
    from kiln.store import api

    return api.import_rootfs(busybox_dir, name="golden-web-1")


def _code(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_launch_templates_over_the_wire(server: Server, ami: str) -> None:
    ec2 = server.client("ec2")
    created = ec2.create_launch_template(
        LaunchTemplateName="web", VersionDescription="first",
        LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.small", "TagSpecifications": [
            {"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}]},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "team", "Value": "web"}]}],
    )["LaunchTemplate"]
    template_id = created["LaunchTemplateId"]
    assert (created["LaunchTemplateName"], created["DefaultVersionNumber"], created["LatestVersionNumber"]) == (
        "web", 1, 1)
    assert created["Tags"] == [{"Key": "team", "Value": "web"}]
    version = ec2.create_launch_template_version(LaunchTemplateId=template_id, SourceVersion="1",
                                                 LaunchTemplateData={"InstanceType": "t3.micro"})
    assert version["LaunchTemplateVersion"]["VersionNumber"] == 2
    assert version["LaunchTemplateVersion"]["LaunchTemplateData"]["ImageId"] == ami
    assert ec2.modify_launch_template(LaunchTemplateName="web", DefaultVersion="2")["LaunchTemplate"][
        "DefaultVersionNumber"] == 2

    versions = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=["$Latest", "1"])
    assert [(v["VersionNumber"], v["DefaultVersion"]) for v in versions["LaunchTemplateVersions"]] == [
        (1, False), (2, True)]
    assert versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]["TagSpecifications"] == [
        {"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}]
    assert [t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]] == [template_id]

    assert _code(ec2.create_launch_template, LaunchTemplateName="web", LaunchTemplateData={"ImageId": ami}) == (
        "InvalidLaunchTemplateName.AlreadyExistsException", 400)
    assert _code(ec2.describe_launch_templates, LaunchTemplateIds=["lt-0123456789abcdef0"]) == (
        "InvalidLaunchTemplateId.NotFound", 400)
    assert _code(ec2.describe_launch_template_versions, LaunchTemplateId=template_id, Versions=["9"]) == (
        "InvalidLaunchTemplateId.VersionNotFound", 400)
    assert _code(ec2.create_launch_template, LaunchTemplateName="db-servers",
                 LaunchTemplateData={"ImageId": "ami-0123456789abcdef0"}) == ("InvalidAMIID.NotFound", 400)

    references = ec2.describe_image_references(ImageIds=[ami], IncludeAllResourceTypes=True)["ImageReferences"]
    assert references == [{"ImageId": ami, "ResourceType": "ec2:LaunchTemplate",
                           "Arn": f"arn:aws:ec2:local:123456789012:launch-template/{template_id}"}]
    assert _code(ec2.describe_image_references, ImageIds=[ami]) == ("MissingParameter", 400)

    deleted = ec2.delete_launch_template_versions(LaunchTemplateId=template_id, Versions=["1", "2"])
    assert [v["VersionNumber"] for v in deleted["SuccessfullyDeletedLaunchTemplateVersions"]] == [1]
    assert deleted["UnsuccessfullyDeletedLaunchTemplateVersions"][0]["ResponseError"]["Code"] == "unexpectedError"
    assert ec2.delete_launch_template(LaunchTemplateName="web")["LaunchTemplate"]["LaunchTemplateId"] == template_id
    assert _code(ec2.describe_launch_template_versions, LaunchTemplateId=template_id, Versions=["$Latest"]) == (
        "InvalidLaunchTemplateId.NotFound", 400)


def test_allowed_images_settings_over_the_wire(server: Server, ami: str) -> None:
    ec2 = server.client("ec2")
    assert ec2.get_allowed_images_settings()["State"] == "disabled"
    assert ec2.replace_image_criteria_in_allowed_images_settings(
        ImageCriteria=[{"ImageNames": ["golden-*"], "CreationDateCondition": {"MaximumDaysSinceCreated": 30}}],
    )["ReturnValue"] is True
    assert ec2.enable_allowed_images_settings(AllowedImagesSettingsState="audit-mode")[
        "AllowedImagesSettingsState"] == "audit-mode"
    settings = ec2.get_allowed_images_settings()
    assert (settings["State"], settings["ManagedBy"]) == ("audit-mode", "account")
    assert settings["ImageCriteria"] == [{"ImageNames": ["golden-*"],
                                          "CreationDateCondition": {"MaximumDaysSinceCreated": 30}}]
    [image] = ec2.describe_images(Owners=["self"])["Images"]
    assert image["ImageAllowed"] is True
    assert _code(ec2.replace_image_criteria_in_allowed_images_settings,
                 ImageCriteria=[{"ImageProviders": ["micro-soft"]}]) == (
        "InvalidParameterValue", 400)
    assert ec2.disable_allowed_images_settings()["AllowedImagesSettingsState"] == "disabled"
    assert "ImageAllowed" not in ec2.describe_images(Owners=["self"])["Images"][0]
    assert ec2.get_allowed_images_settings()["ImageCriteria"][0]["ImageNames"] == ["golden-*"]  # unchanged


@needs_root
def test_run_instances_from_a_launch_template(server: Server, ami: str) -> None:
    ec2 = server.client("ec2")
    template_id = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": ami, "InstanceType": "t3.small"})["LaunchTemplate"]["LaunchTemplateId"]
    assert _code(ec2.run_instances, MinCount=1, MaxCount=1, DryRun=True,
                 LaunchTemplate={"LaunchTemplateId": template_id}) == ("DryRunOperation", 412)
    assert _code(ec2.run_instances, MinCount=1, MaxCount=1,
                 LaunchTemplate={"LaunchTemplateName": "web", "Version": "4"}) == (
        "InvalidLaunchTemplateId.VersionNotFound", 400)
    [instance] = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "web"})["Instances"]
    try:
        assert (instance["ImageId"], instance["InstanceType"]) == (ami, "t3.small")
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert (tags["aws:ec2launchtemplate:id"], tags["aws:ec2launchtemplate:version"]) == (template_id, "1")
    finally:
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
