"""A distribution's ``kiln:AwsPublish`` target against moto's server: a pipeline's build publishes its
AMI to AWS at the distribution step (EBS direct APIs, RegisterImage, launch permissions) and records
the real AMI in ``outputResources``; a build that fails after publishing, or whose publish fails,
leaves nothing registered on AWS and no snapshot behind."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.aws.conftest import client, disk_blocks, snapshot_blocks
from tests.aws.proxy import FaultProxy
from tests.builds.distribution_helpers import build, make_build_inputs
from tests.conftest import Kiln, MotoServer

from kiln.errors import KilnError
from kiln.services.builds import records as images

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")
PARTNER = "111122223333"


def aws_entry(endpoint: str, **more: Any) -> dict[str, Any]:
    return {"region": "local", "amiDistributionConfiguration": {"amiTags": {"team": "web"}},
            "kiln:AwsPublish": [{"region": "us-east-1", "endpointUrl": endpoint,
                                 "launchPermission": {"userIds": [PARTNER]}}], **more}


def account_amis(aws: MotoServer) -> list[dict[str, Any]]:
    return list(client(aws, "ec2").describe_images(Owners=["self"])["Images"])


def account_snapshots(aws: MotoServer) -> set[str]:
    answer = client(aws, "ec2").describe_snapshots(OwnerIds=["self"])
    return {snapshot["SnapshotId"] for snapshot in answer["Snapshots"] if snapshot["OwnerId"] == "123456789012"}


def publications() -> int:
    from kiln.db.engine import session
    from kiln.db.tables.publishing import Publication

    with session() as db:
        return int(db.scalar(select(func.count()).select_from(Publication)) or 0)


def test_a_pipeline_build_publishes_its_ami_to_aws(kiln: Kiln, aws: MotoServer, parent_ami: str,
                                                   tmp_path: Path) -> None:
    from kiln.services.pipelines.resource import create_image_pipeline
    from kiln.services.pipelines.runs import start_image_pipeline_execution
    from kiln.store import api

    arns = make_build_inputs(parent_ami, [aws_entry(aws.endpoint)])
    pipeline = create_image_pipeline({
        "name": "web-to-aws", "imageRecipeArn": arns["recipe"],
        "infrastructureConfigurationArn": arns["infrastructure"], "distributionConfigurationArn": arns["distribution"],
        "imageTestsConfiguration": {"imageTestsEnabled": False},
    })["imagePipelineArn"]  # fmt: skip
    arn = start_image_pipeline_execution({"imagePipelineArn": pipeline}, progress=lambda _: None)[
        "imageBuildVersionArn"]
    image = images.get_image(arn)
    assert image["state"]["status"] == "AVAILABLE", image["state"]

    local, published = image["outputResources"]["amis"]
    assert "kiln:Target" not in local and local["region"] == "local"
    [ami] = account_amis(aws)
    assert published == {"region": "us-east-1", "accountId": "123456789012", "image": ami["ImageId"],
                         "kiln:Target": "aws", "name": local["name"], "state": {"status": "AVAILABLE"}}
    tags = {tag["Key"]: tag["Value"] for tag in ami["Tags"]}
    assert tags["Ec2ImageBuilderArn"] == arn and tags["kiln:PipelineArn"] == pipeline
    assert tags["team"] == "web" and tags["kiln:SourceImageId"] == local["image"]
    assert ami["Name"] == local["name"]
    permissions = client(aws, "ec2").describe_image_attribute(ImageId=ami["ImageId"], Attribute="launchPermission")
    assert permissions["LaunchPermissions"] == [{"UserId": PARTNER}]
    [distribute] = [s for s in images.list_steps(arn) if s["name"] == "DistributeImage"]
    [step] = distribute["outputs"]["awsPublished"]
    assert step["imageId"] == ami["ImageId"] and step["sourceImageId"] == local["image"]
    # the EBS snapshot holds the local AMI's raw disk, block for block (moto registers the AMI on a
    # snapshot of its own: the README's gaps)
    raw = disk_blocks(api.export_image(local["image"], "raw", tmp_path / "d.raw"))
    assert snapshot_blocks(aws, step["snapshotId"]) == raw and step["blocksSent"] == len(raw)
    assert distribute["outputs"]["distributedImages"] == [
        {"region": "local", "accountId": "123456789012", "imageId": local["image"]}]
    shown = json.loads(kiln("distribution", "get", arns["distribution"], "--output", "json").stdout)
    assert json.dumps(shown).count('"kiln:AwsPublish"') == 1


def test_a_build_failing_after_its_publish_deregisters_the_ami_and_its_snapshot(aws: MotoServer,
                                                                                parent_ami: str) -> None:
    # a launch template that does not exist fails the build after DistributeImage published the AMI
    arns = make_build_inputs(parent_ami, [aws_entry(
        aws.endpoint, launchTemplateConfigurations=[{"launchTemplateId": "lt-0123456789abcdef0"}])])
    before = account_snapshots(aws)
    with pytest.raises(KilnError, match="lt-0123456789abcdef0"):
        build(arns)
    [image] = images.list_images(name="web")
    assert image["state"]["status"] == "FAILED"
    [distribute] = [s for s in images.list_steps(image["arn"]) if s["name"] == "DistributeImage"]
    assert distribute["status"] == "COMPLETED" and distribute["outputs"]["awsPublished"]  # it was published
    assert account_amis(aws) == [] and account_snapshots(aws) == before
    assert publications() == 0


def test_a_failed_publish_leaves_nothing_registered(aws: MotoServer, parent_ami: str) -> None:
    before = account_snapshots(aws)
    with FaultProxy(aws.endpoint) as proxy:
        proxy.complete_faults = [503] * 8  # CompleteSnapshot fails, retries and all
        arns = make_build_inputs(parent_ami, [aws_entry(proxy.endpoint)])
        with pytest.raises(KilnError, match=r"publishing ami-\w+ to AWS region us-east-1 failed"):
            build(arns)
        assert proxy.puts  # blocks were written to a pending snapshot before it failed
    [image] = images.list_images(name="web")
    assert image["state"]["status"] == "FAILED"
    assert "distributions[0].kiln:AwsPublish[0]" in image["state"]["reason"]
    assert account_amis(aws) == [] and account_snapshots(aws) == before
    assert publications() == 0


def test_bad_targets_are_refused_with_the_field_named(kiln: Kiln, tmp_path: Path) -> None:
    body = tmp_path / "dist.json"
    for target, field in (({"region": "moon"}, "kiln:AwsPublish[0].region"),
                          ({"region": "us-east-1", "bucket": "x"}, "kiln:AwsPublish[0].bucket")):
        body.write_text(json.dumps({"name": "to-aws", "distributions": [
            {"region": "local", "kiln:AwsPublish": [target]}]}))
        result = kiln("distribution", "create", "--cli-input-json", f"file://{body}")
        assert result.exit_code != 0 and f"distributions[0].{field}" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert "to-aws" not in kiln("distribution", "list", "--output", "json").stdout
