"""The whole demo story over the wire, with boto3 only, against a real ``kiln serve`` (its scheduler builds):
a component, a recipe, infrastructure and distribution configurations, a pipeline; an execution of it
built to AVAILABLE; its AMI described through EC2 and shared with another account; a launch template on
it; a lifecycle policy over the recipe's images, and that policy's execution listed and read."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.api.conftest import ServeProcess
from tests.api.test_api_builds import parent_ami  # noqa: F401 (the fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")

BUILD_BOUND = 600.0  # seconds; a busybox build takes a few on an idle machine
COMPONENT = """\
name: web-setup
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Setup
        action: ExecuteBash
        inputs:
          commands:
            - echo demo > /etc/demo-by-kiln
"""


def _available(client: Any, arn: str) -> dict[str, Any]:
    """The image once its build has ended, polled as a waiter would."""
    deadline = time.monotonic() + BUILD_BOUND
    while time.monotonic() < deadline:
        image = client.get_image(imageBuildVersionArn=arn)["image"]
        if image["state"]["status"] in ("AVAILABLE", "FAILED", "CANCELLED"):
            return image
        time.sleep(0.5)
    pytest.fail(f"{arn} did not finish in {BUILD_BOUND} s")


def test_the_demo_story_over_the_wire(serve_process: ServeProcess, parent_ami: str) -> None:  # noqa: F811
    from kiln.services.accounts.accounts import create_access_key, create_account
    from kiln.services.lifecycle import runner

    builder, ec2 = serve_process.client(), serve_process.client("ec2")
    component = builder.create_component(name="web-setup", semanticVersion="1.0.0", platform="Linux",
                                         data=COMPONENT)["componentBuildVersionArn"]
    assert builder.get_component(componentBuildVersionArn=component)["component"]["arn"] == component
    recipe = builder.create_image_recipe(name="web", semanticVersion="1.0.0", parentImage=parent_ami,
                                         components=[{"componentArn": component}])["imageRecipeArn"]
    infrastructure = builder.create_infrastructure_configuration(
        name="web-infra", instanceProfileName="builder")["infrastructureConfigurationArn"]
    distribution = builder.create_distribution_configuration(name="web-dist", distributions=[{
        "region": "local",
        "amiDistributionConfiguration": {"name": "web-{{ imagebuilder:buildVersion }}", "amiTags": {"team": "web"}},
    }])["distributionConfigurationArn"]
    pipeline = builder.create_image_pipeline(
        name="web-pipeline", imageRecipeArn=recipe, infrastructureConfigurationArn=infrastructure,
        distributionConfigurationArn=distribution, imageTestsConfiguration={"imageTestsEnabled": False},
    )["imagePipelineArn"]
    assert builder.get_image_pipeline(imagePipelineArn=pipeline)["imagePipeline"]["imageRecipeArn"] == recipe

    started = builder.start_image_pipeline_execution(imagePipelineArn=pipeline)["imageBuildVersionArn"]
    image = _available(builder, started)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    listed = builder.list_image_pipeline_images(imagePipelineArn=pipeline)["imageSummaryList"]
    assert [entry["arn"] for entry in listed] == [started]
    [output] = image["outputResources"]["amis"]
    ami = output["image"]

    [described] = ec2.describe_images(ImageIds=[ami])["Images"]
    assert (described["State"], described["Name"]) == ("available", "web-1")
    tags = {tag["Key"]: tag["Value"] for tag in described["Tags"]}
    assert tags["team"] == "web" and tags["Ec2ImageBuilderArn"] == started
    assert ami in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]

    partner = create_account("partner")["Id"]
    partner_ec2 = serve_process.client("ec2", key=create_access_key(partner))
    assert partner_ec2.describe_images(ExecutableUsers=["self"])["Images"] == []
    ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": partner}]})
    shared = ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"]
    assert shared == [{"UserId": partner}]
    assert [i["ImageId"] for i in partner_ec2.describe_images(ExecutableUsers=["self"])["Images"]] == [ami]

    template = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": ami, "InstanceType": "t3.micro"})["LaunchTemplate"]
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"],
                                                     Versions=["$Default"])["LaunchTemplateVersions"]
    assert versions[0]["LaunchTemplateData"]["ImageId"] == ami

    policy = builder.create_lifecycle_policy(
        name="retire-web", executionRole="arn:aws:iam::123456789012:role/lifecycle", resourceType="AMI_IMAGE",
        policyDetails=[{"action": {"type": "DEPRECATE", "includeResources": {"amis": True}},
                        "filter": {"type": "AGE", "value": 1, "unit": "DAYS"}}],
        resourceSelection={"recipes": [{"name": "web", "semanticVersion": "1.0.0"}]},
    )["lifecyclePolicyArn"]
    assert builder.get_lifecycle_policy(lifecyclePolicyArn=policy)["lifecyclePolicy"]["status"] == "ENABLED"
    # kiln's scheduler runs a policy daily; here it runs now, judging ages two days on
    execution = runner.run(policy, as_of=datetime.now(UTC) + timedelta(days=2)).lifecycleExecutionId

    executions = builder.list_lifecycle_executions(resourceArn=policy)["lifecycleExecutions"]
    assert [e["lifecycleExecutionId"] for e in executions] == [execution]
    got = builder.get_lifecycle_execution(lifecycleExecutionId=execution)["lifecycleExecution"]
    assert got["state"]["status"] == "SUCCESS" and got["lifecyclePolicyArn"] == policy
    resources = builder.list_lifecycle_execution_resources(lifecycleExecutionId=execution)["resources"]
    assert [(r["resourceId"], r["action"]["name"]) for r in resources] == [(started, "DEPRECATE")], resources
    [deprecated] = ec2.describe_images(ImageIds=[ami])["Images"]
    assert "DeprecationTime" in deprecated
