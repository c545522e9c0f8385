"""A request acts in the region it was signed for: a resource of another region named by its ARN or id
is not found, as a regional endpoint answers (Image Builder's ResourceNotFoundException, EC2's
``….NotFound``), and nothing of it changes; the same call in the resource's own region finds it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server

from kiln.home import DEFAULT_ACCOUNT

FAR = "eu-west-1"
DOCUMENT = ("name: comp\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: S\n"
            "        action: ExecuteBash\n        inputs:\n          commands: [echo hi]\n")


def _refused(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    error = refused.value.response["Error"]
    return error["Code"], error.get("Message", "")


@pytest.fixture
def far(server: Server) -> None:
    from kiln.services.accounts.regions import create_region

    create_region(FAR)


def test_image_builder_resources_of_another_region_are_not_found(server: Server, far: None) -> None:
    from kiln.services.builds import records

    home = server.client()
    component = home.create_component(name="comp", semanticVersion="1.0.0", platform="Linux",
                                      data=DOCUMENT)["componentBuildVersionArn"]
    recipe = home.create_image_recipe(name="web", semanticVersion="1.0.0", parentImage="ami-0123456789abcdef0",
                                      components=[{"componentArn": component}])["imageRecipeArn"]
    infra = home.create_infrastructure_configuration(name="infra",
                                                     instanceProfileName="kiln")["infrastructureConfigurationArn"]
    dist = home.create_distribution_configuration(
        name="dist", distributions=[{"region": "local"}])["distributionConfigurationArn"]
    pipeline = home.create_image_pipeline(name="pipe", imageRecipeArn=recipe,
                                          infrastructureConfigurationArn=infra)["imagePipelineArn"]
    policy = home.create_lifecycle_policy(
        name="retire", executionRole="arn:aws:iam::123456789012:role/lifecycle", resourceType="AMI_IMAGE",
        policyDetails=[{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 2}}],
        resourceSelection={"recipes": [{"name": "web", "semanticVersion": "1.0.0"}]},
    )["lifecyclePolicyArn"]
    image = records.create_image(name="web", version="1.0.0", recipe_arn=recipe, infrastructure_arn=infra)
    assert all(":local:" in arn for arn in (component, recipe, infra, dist, pipeline, policy, image))

    away = server.client(region=FAR)
    calls = [
        (away.get_component, {"componentBuildVersionArn": component}, component),
        (away.delete_component, {"componentBuildVersionArn": component}, component),
        (away.get_image_recipe, {"imageRecipeArn": recipe}, recipe),
        (away.delete_image_recipe, {"imageRecipeArn": recipe}, recipe),
        (away.get_infrastructure_configuration, {"infrastructureConfigurationArn": infra}, infra),
        (away.delete_infrastructure_configuration, {"infrastructureConfigurationArn": infra}, infra),
        (away.update_distribution_configuration,
         {"distributionConfigurationArn": dist, "distributions": [{"region": FAR}]}, dist),
        (away.get_distribution_configuration, {"distributionConfigurationArn": dist}, dist),
        (away.get_image_pipeline, {"imagePipelineArn": pipeline}, pipeline),
        (away.start_image_pipeline_execution, {"imagePipelineArn": pipeline}, pipeline),
        (away.delete_image_pipeline, {"imagePipelineArn": pipeline}, pipeline),
        (away.get_lifecycle_policy, {"lifecyclePolicyArn": policy}, policy),
        (away.delete_lifecycle_policy, {"lifecyclePolicyArn": policy}, policy),
        (away.list_lifecycle_executions, {"resourceArn": policy}, policy),
        (away.get_image, {"imageBuildVersionArn": image}, image),
        (away.list_image_build_versions, {"imageVersionArn": image.rsplit("/", 1)[0]}, image.rsplit("/", 1)[0]),
        (away.cancel_image_creation, {"imageBuildVersionArn": image}, image),
        (away.list_tags_for_resource, {"resourceArn": recipe}, recipe),
        (away.tag_resource, {"resourceArn": recipe, "tags": {"k": "v"}}, recipe),
        (away.create_image, {"imageRecipeArn": recipe, "infrastructureConfigurationArn": infra}, recipe),
    ]
    for call, kwargs, arn in calls:
        code, message = _refused(call, **kwargs)
        assert code == "ResourceNotFoundException", (call, code, message)
        assert arn in message and f"region {FAR}" in message and DEFAULT_ACCOUNT in arn, message

    # nothing changed, and in its own region each is found
    assert home.get_component(componentBuildVersionArn=component)["component"]["arn"] == component
    assert home.get_image_recipe(imageRecipeArn=recipe)["imageRecipe"]["arn"] == recipe
    assert home.get_distribution_configuration(
        distributionConfigurationArn=dist)["distributionConfiguration"]["distributions"] == [{"region": "local"}]
    assert home.get_image_pipeline(imagePipelineArn=pipeline)["imagePipeline"]["arn"] == pipeline
    assert home.get_lifecycle_policy(lifecyclePolicyArn=policy)["lifecyclePolicy"]["arn"] == policy
    assert home.get_image(imageBuildVersionArn=image)["image"]["state"]["status"] == "PENDING"
    assert home.list_tags_for_resource(resourceArn=recipe)["tags"] == {}
    assert away.list_image_recipes()["imageRecipeSummaryList"] == []


def test_amazon_managed_components_are_found_in_every_region(server: Server, far: None) -> None:
    away = server.client(region=FAR)
    [managed, *_] = away.list_components(owner="Amazon")["componentVersionList"]
    found = away.get_component(componentBuildVersionArn=managed["arn"] + "/1")["component"]
    assert found["owner"] == "Amazon"


@pytest.fixture
def ami(kiln_home: Path, busybox_dir: Path) -> str:
    from kiln.store import api

    return api.import_rootfs(busybox_dir, name="busybox-base")


def test_amis_and_snapshots_of_another_region_are_not_found(server: Server, far: None, ami: str) -> None:
    home, away = server.client("ec2"), server.client("ec2", region=FAR)
    [image] = home.describe_images(ImageIds=[ami])["Images"]
    snapshot = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]

    assert _refused(away.describe_images, ImageIds=[ami])[0] == "InvalidAMIID.NotFound"
    assert away.describe_images(Owners=["self"])["Images"] == []
    assert _refused(away.describe_image_attribute, ImageId=ami, Attribute="description")[0] == "InvalidAMIID.NotFound"
    assert _refused(away.modify_image_attribute, ImageId=ami,
                    LaunchPermission={"Add": [{"Group": "all"}]})[0] == "InvalidAMIID.NotFound"
    assert _refused(away.enable_image_deprecation, ImageId=ami,
                    DeprecateAt="2030-01-01T00:00:00Z")[0] == "InvalidAMIID.NotFound"
    assert _refused(away.deregister_image, ImageId=ami)[0] == "InvalidAMIID.NotFound"
    assert _refused(away.create_tags, Resources=[ami], Tags=[{"Key": "k", "Value": "v"}])[0] == "InvalidID"
    assert _refused(away.describe_snapshots, SnapshotIds=[snapshot])[0] == "InvalidSnapshot.NotFound"
    assert _refused(away.delete_snapshot, SnapshotId=snapshot)[0] == "InvalidSnapshot.NotFound"
    assert _refused(away.create_tags, Resources=[snapshot], Tags=[{"Key": "k", "Value": "v"}])[0] == "InvalidID"

    [after] = home.describe_images(ImageIds=[ami])["Images"]  # unchanged at home
    assert (after["State"], after["Public"], after.get("Tags", []), "DeprecationTime" in after) == (
        "available", False, [], False)
    assert [s["SnapshotId"] for s in home.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]] == [snapshot]


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")
def test_an_instance_of_another_region_is_not_found(server: Server, far: None, ami: str) -> None:
    home, away = server.client("ec2"), server.client("ec2", region=FAR)
    [instance] = home.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"]
    instance_id = instance["InstanceId"]
    try:
        assert _refused(away.describe_instances, InstanceIds=[instance_id])[0] == "InvalidInstanceID.NotFound"
        assert away.describe_instances()["Reservations"] == []
        assert _refused(away.stop_instances, InstanceIds=[instance_id])[0] == "InvalidInstanceID.NotFound"
        assert _refused(away.terminate_instances, InstanceIds=[instance_id])[0] == "InvalidInstanceID.NotFound"
        [reservation] = home.describe_instances(InstanceIds=[instance_id])["Reservations"]
        assert reservation["Instances"][0]["State"]["Name"] == "running"
    finally:
        home.terminate_instances(InstanceIds=[instance_id])
