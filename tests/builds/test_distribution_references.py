"""Distribution updates SSM parameters and launch templates — with the image becoming AVAILABLE, or
not at all."""

from __future__ import annotations

import os

import pytest
from tests.builds.distribution_helpers import CONSUMER, build, make_build_inputs, make_world, tagged_amis

from kiln.errors import KilnError
from kiln.services.builds import records as images

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")
OWNER = "123456789012"


def _template(account: str, region: str = "us-east-1") -> str:
    from kiln.services.fleet.launch_templates import create_launch_template

    created = create_launch_template(f"web-{account}", {"InstanceType": "t3.micro"}, account=account, region=region)
    return str(created["LaunchTemplate"]["LaunchTemplateId"])


def _versions(template: str, account: str) -> tuple[int, int, dict[int, str | None]]:
    from kiln.services.fleet.launch_templates import (
        TemplateRef,
        describe_launch_template_versions,
        describe_launch_templates,
    )

    ref = TemplateRef(launch_template_id=template)
    [shape] = describe_launch_templates(launch_template_ids=[template], account=account,
                                        region="us-east-1")["LaunchTemplates"]
    versions = describe_launch_template_versions(ref, account=account, region="us-east-1")["LaunchTemplateVersions"]
    images_by_version = {v["VersionNumber"]: v["LaunchTemplateData"].get("ImageId") for v in versions}
    return shape["DefaultVersionNumber"], shape["LatestVersionNumber"], images_by_version


def test_parameters_and_launch_templates_point_at_the_new_amis(parent_ami: str) -> None:
    from kiln.services.parameters.parameter_store import get_parameter

    make_world()
    mine, theirs = _template(OWNER), _template(CONSUMER)
    arns = make_build_inputs(parent_ami, [{
        "region": "us-east-1",
        "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER]},
        "ssmParameterConfigurations": [
            {"parameterName": "/golden/web/latest", "dataType": "aws:ec2:image"},
            {"parameterName": "/golden/web/latest", "amiAccountId": CONSUMER, "dataType": "aws:ec2:image"},
        ],
        "launchTemplateConfigurations": [
            {"launchTemplateId": mine},
            {"launchTemplateId": theirs, "accountId": CONSUMER, "setDefaultVersion": False},
        ],
    }])
    image = build(arns)
    assert image["state"]["status"] == "AVAILABLE"
    amis = {(a["region"], a["accountId"]): a["image"] for a in image["outputResources"]["amis"]}
    mine_ami, theirs_ami = amis["us-east-1", OWNER], amis["us-east-1", CONSUMER]
    owned = get_parameter("/golden/web/latest", account=OWNER, region="us-east-1")
    assert owned["Value"] == mine_ami and owned["DataType"] == "aws:ec2:image"
    assert get_parameter("/golden/web/latest", account=CONSUMER, region="us-east-1")["Value"] == theirs_ami
    assert _versions(mine, OWNER) == (2, 2, {1: None, 2: mine_ami})
    assert _versions(theirs, CONSUMER) == (1, 2, {1: None, 2: theirs_ami})  # setDefaultVersion false
    [step] = [s for s in images.list_steps(image["arn"]) if s["name"] == "UpdateParametersAndLaunchTemplates"]
    assert step["status"] == "COMPLETED" and len(step["outputs"]["parameters"]) == 2


def test_a_refused_parameter_write_changes_no_parameter_nor_template_and_removes_the_copies(
        parent_ami: str) -> None:
    from kiln.services.parameters.parameter_store import get_parameter, put_parameter

    make_world()
    put_parameter("/golden/web/notes", "free text", account=OWNER, region="us-east-1")  # a text parameter
    template = _template(OWNER)
    arns = make_build_inputs(parent_ami, [{
        "region": "us-east-1",
        "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER]},
        "launchTemplateConfigurations": [{"launchTemplateId": template}],
        "ssmParameterConfigurations": [
            {"parameterName": "/golden/web/latest", "dataType": "aws:ec2:image"},
            {"parameterName": "/golden/web/notes", "dataType": "aws:ec2:image"},  # cannot change data type
        ],
    }])
    with pytest.raises(KilnError, match=r"ssmParameterConfigurations\[1\]"):
        build(arns)
    [image] = images.list_images(name="web")
    assert image["state"]["status"] == "FAILED"
    assert tagged_amis(image["arn"]) == []
    assert _versions(template, OWNER) == (1, 1, {1: None})
    assert get_parameter("/golden/web/notes", account=OWNER, region="us-east-1")["Version"] == 1
    with pytest.raises(KilnError):
        get_parameter("/golden/web/latest", account=OWNER, region="us-east-1")


def test_a_parameter_for_an_account_that_gets_no_copy_is_refused_at_build_start(parent_ami: str) -> None:
    make_world()
    arns = make_build_inputs(parent_ami, [{"region": "us-east-1", "ssmParameterConfigurations": [
        {"parameterName": "/golden/web/latest", "amiAccountId": CONSUMER}]}])
    with pytest.raises(KilnError) as refused:
        build(arns)
    assert "distributions[0].ssmParameterConfigurations[0].amiAccountId" in (refused.value.location or "")
    assert images.list_images(name="web") == []
