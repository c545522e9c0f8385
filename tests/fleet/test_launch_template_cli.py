"""``kiln launch-template`` and ``kiln instance run --launch-template``: launch template data as the AWS
CLI takes it (inline JSON, file://, YAML), EC2's codes on refusal with nothing changed, and instances
that record the template and version they were launched from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")


@pytest.fixture
def ami(kiln, busybox_dir: Path) -> str:
    return kiln("image", "import", str(busybox_dir), "--name", "golden-web").stdout.strip()


def _json(kiln, *args: str) -> dict:
    result = kiln(*args, "--output", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_create_versions_modify_describe_delete(kiln, ami: str, tmp_path: Path) -> None:
    created = kiln("launch-template", "create", "web", "--launch-template-data", json.dumps({"ImageId": ami}),
                   "--tag", "team=web")
    assert created.exit_code == 0, created.stderr
    template_id = created.stdout.strip()
    (tmp_path / "v2.yaml").write_text(f"ImageId: {ami}\nInstanceType: t3.small\n")
    assert kiln("launch-template", "create-version", "web", "--launch-template-data",
                f"file://{tmp_path / 'v2.yaml'}", "--version-description", "small").stdout == "2\n"
    assert kiln("launch-template", "modify", template_id, "--default-version", "2").stdout == "2\n"

    described = _json(kiln, "launch-template", "describe", "web")["LaunchTemplates"][0]
    assert (described["LaunchTemplateId"], described["DefaultVersionNumber"], described["LatestVersionNumber"]) == (
        template_id, 2, 2)
    table = kiln("launch-template", "describe-versions", "web").stdout.splitlines()
    assert table[0].split() == ["LaunchTemplateId", "Name", "Version", "Default", "ImageId", "InstanceType",
                                "Description"]
    assert table[2].split() == [template_id, "web", "2", "yes", ami, "t3.small", "small"]

    refused = kiln("launch-template", "modify", "web", "--default-version", "9")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: InvalidLaunchTemplateId.VersionNotFound:")
    bad_data = kiln("launch-template", "create-version", "web", "--launch-template-data", '{"ImageId": ')
    assert bad_data.exit_code == 1 and "Traceback" not in bad_data.stderr
    assert _json(kiln, "launch-template", "describe", "web")["LaunchTemplates"][0]["LatestVersionNumber"] == 2

    deleted = kiln("launch-template", "delete-versions", "web", "1", "2")
    assert deleted.exit_code == 1 and deleted.stdout == "1\n" and "default version" in deleted.stderr
    assert kiln("launch-template", "delete", "web").stdout == f"{template_id}\n"
    gone = kiln("launch-template", "describe-versions", template_id, "--version", "$Latest")
    assert gone.exit_code == 1 and gone.stderr.startswith("error: InvalidLaunchTemplateId.NotFound:")


def test_an_image_the_account_cannot_see_is_refused(kiln, ami: str) -> None:
    kiln("account", "create", "peer", "--account-id", "210987654321")
    refused = kiln("launch-template", "create", "web", "--launch-template-data", json.dumps({"ImageId": ami}),
                   "--account", "210987654321")
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[0] == f"error: InvalidAMIID.NotFound: The image id '[{ami}]' does not exist"
    assert "refused as account 210987654321 in region local" in refused.stderr
    assert _json(kiln, "launch-template", "describe", "--account", "210987654321") == {"LaunchTemplates": []}


@needs_root
def test_instances_launch_from_a_template_version_resolving_its_parameter(kiln, ami: str) -> None:
    assert kiln("parameter", "put", "/golden/web/latest", ami, "--data-type", "aws:ec2:image").exit_code == 0
    data = {"ImageId": "resolve:ssm:/golden/web/latest", "InstanceType": "t3.small",
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}]}
    template_id = kiln("launch-template", "create", "web", "--launch-template-data", json.dumps(data)).stdout.strip()
    kiln("launch-template", "create-version", "web", "--launch-template-data", '{"InstanceType": "t3.micro"}')

    instance = _json(kiln, "instance", "run", "--launch-template", "web")
    try:
        assert instance["ImageId"] == ami and instance["InstanceType"] == "t3.small"
        assert {t["Key"]: t["Value"] for t in instance["Tags"]} == {
            "role": "web", "aws:ec2launchtemplate:id": template_id, "aws:ec2launchtemplate:version": "1"}
    finally:
        kiln("instance", "terminate", instance["InstanceId"], "--force")

    # Version 2 has no ImageId: EC2's MissingParameter, and no instance is launched.
    missing = kiln("instance", "run", "--launch-template", f"{template_id},$Latest")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: MissingParameter:")
    unknown = kiln("instance", "run", "--launch-template", "web,5")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("error: InvalidLaunchTemplateId.VersionNotFound:")
    listed = _json(kiln, "instance", "list")
    assert [i["InstanceId"] for i in listed["Instances"] if i["State"]["Name"] != "terminated"] == []


@needs_root
def test_user_data_is_handed_to_the_instance_and_a_script_runs_once(kiln, ami: str) -> None:
    import base64
    import time

    script = b"#!/bin/sh\necho ran >> /var/lib/cloud/instance/ran\necho to the log\n"
    data = {"ImageId": ami, "UserData": base64.b64encode(script).decode()}
    kiln("launch-template", "create", "web", "--launch-template-data", json.dumps(data))
    instance_id = kiln("instance", "run", "--launch-template", "web").stdout.strip()
    try:
        kept = kiln("instance", "exec", instance_id, "--", "cat", "/var/lib/cloud/instance/user-data.txt")
        assert kept.stdout.encode() == script
        deadline = time.monotonic() + 30  # the script runs detached; wait for it, not for a time
        while kiln("instance", "exec", instance_id, "--", "test", "-s", "/var/log/cloud-init-output.log").exit_code:
            assert time.monotonic() < deadline, "the user data script did not run"
            time.sleep(0.1)
        assert kiln("instance", "exec", instance_id, "--", "cat", "/var/lib/cloud/instance/ran").stdout == "ran\n"
        assert kiln("instance", "exec", instance_id, "--", "cat", "/var/log/cloud-init-output.log").stdout == (
            "to the log\n")
    finally:
        kiln("instance", "terminate", instance_id, "--force")
