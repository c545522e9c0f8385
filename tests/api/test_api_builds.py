"""Builds started over the API run in ``kiln serve``'s worker pool: CreateImage and
StartImagePipelineExecution answer at once with a PENDING image, and GetImage follows it to AVAILABLE
(or FAILED) while the scheduler inside the same ``kiln serve`` process builds it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import ServeProcess, start

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")

BUILD_BOUND = 600.0  # seconds; a busybox build takes a few on an idle machine


def _component(commands: str) -> str:
    return f"""\
name: setup
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Setup
        action: ExecuteBash
        inputs:
          commands:
            - {commands}
"""


@pytest.fixture
def parent_ami(busybox_copy: Any) -> str:
    from kiln.store.api import import_rootfs

    root = busybox_copy("busybox")
    bash = root / "bin" / "bash"  # ExecuteBash runs bash; busybox's sh stands in for it
    bash.write_text('#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n')
    bash.chmod(0o755)
    return import_rootfs(root, name="busybox-parent")


def _inputs(client: Any, parent: str, commands: str, name: str) -> dict[str, str]:
    component = client.create_component(name=f"{name}-setup", semanticVersion="1.0.0", platform="Linux",
                                        data=_component(commands))["componentBuildVersionArn"]
    recipe = client.create_image_recipe(name=name, semanticVersion="1.0.0", parentImage=parent,
                                        components=[{"componentArn": component}])["imageRecipeArn"]
    infra = client.create_infrastructure_configuration(name=f"{name}-infra", instanceProfileName="builder",
                                                       subnetId="none")["infrastructureConfigurationArn"]
    return {"recipe": recipe, "infrastructure": infra}


def _wait(client: Any, arn: str) -> tuple[dict[str, Any], list[str]]:
    """The image once it is final, and every status GetImage showed on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + BUILD_BOUND
    while time.monotonic() < deadline:
        image = client.get_image(imageBuildVersionArn=arn)["image"]
        status = image["state"]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("AVAILABLE", "FAILED", "CANCELLED"):
            return image, seen
        time.sleep(0.2)
    pytest.fail(f"{arn} still {seen[-1]} after {BUILD_BOUND} s")


def test_create_image_is_built_by_the_server_and_its_ami_is_described(serve_process: ServeProcess,
                                                                       parent_ami: str) -> None:
    client, ec2 = serve_process.client(), serve_process.client("ec2")
    inputs = _inputs(client, parent_ami, "echo built > /etc/built-by-kiln", "web")
    request = {"imageRecipeArn": inputs["recipe"], "infrastructureConfigurationArn": inputs["infrastructure"],
               "imageTestsConfiguration": {"imageTestsEnabled": False}, "clientToken": "build-1"}
    answer = client.create_image(**request)
    arn = answer["imageBuildVersionArn"]
    assert arn.endswith(":image/web/1.0.0/1") and answer["clientToken"] == "build-1"
    retried = client.create_image(**request)
    assert retried["imageBuildVersionArn"] == arn  # the retry starts nothing new

    image, seen = _wait(client, arn)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    # the states GetImage showed come in Image Builder's order (which ones a 0.2 s poll catches is timing)
    order = ["PENDING", "CREATING", "BUILDING", "TESTING", "DISTRIBUTING", "INTEGRATING", "AVAILABLE"]
    assert seen[0] in ("PENDING", "CREATING", "BUILDING") and [order.index(status) for status in seen] == sorted(
        order.index(status) for status in seen), seen
    [ami] = image["outputResources"]["amis"]
    [described] = ec2.describe_images(ImageIds=[ami["image"]])["Images"]
    assert (described["State"], described["ImageId"]) == ("available", ami["image"])
    tags = {tag["Key"]: tag["Value"] for tag in described["Tags"]}
    assert tags["Ec2ImageBuilderArn"] == arn
    builds = client.list_image_build_versions(imageVersionArn=arn.rsplit("/", 1)[0])["imageSummaryList"]
    assert [b["arn"] for b in builds] == [arn]
    assert f"{arn}: AVAILABLE" in serve_process.stderr()


def test_pipeline_execution_and_a_failing_build(serve_process: ServeProcess, parent_ami: str) -> None:
    client = serve_process.client()
    good = _inputs(client, parent_ami, "echo fine", "api")
    pipeline = client.create_image_pipeline(
        name="api-pipeline", imageRecipeArn=good["recipe"], infrastructureConfigurationArn=good["infrastructure"],
        imageTestsConfiguration={"imageTestsEnabled": False},
    )["imagePipelineArn"]
    started = client.start_image_pipeline_execution(imagePipelineArn=pipeline)["imageBuildVersionArn"]
    with pytest.raises(client.exceptions.ResourceInUseException):
        client.start_image_pipeline_execution(imagePipelineArn=pipeline)
    bad = _inputs(client, parent_ami, "exit 3", "broken")
    failing = client.create_image(imageRecipeArn=bad["recipe"], infrastructureConfigurationArn=bad["infrastructure"],
                                  imageTestsConfiguration={"imageTestsEnabled": False})["imageBuildVersionArn"]

    image, _ = _wait(client, started)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    assert image["sourcePipelineArn"] == pipeline
    listed = client.list_image_pipeline_images(imagePipelineArn=pipeline)["imageSummaryList"]
    assert [i["arn"] for i in listed] == [started]
    broken, _ = _wait(client, failing)
    assert broken["state"]["status"] == "FAILED"
    assert "reason" in broken["state"] and broken["outputResources"]["amis"] == []


def test_builds_queued_by_a_server_that_stopped_are_failed_not_left_pending(
        kiln_home: Path, tmp_path: Path, parent_ami: str) -> None:
    """A ``--no-scheduler`` server queues; once it is gone the image is FAILED by start-up recovery."""
    from kiln.home import DEFAULT_ACCOUNT
    from kiln.services.accounts.accounts import create_access_key
    from kiln.services.builds.recovery import recover_interrupted_builds

    key = create_access_key(DEFAULT_ACCOUNT)
    running = start(kiln_home, tmp_path / "serve.log", "--no-scheduler", key=key)
    try:
        client = running.client()
        inputs = _inputs(client, parent_ami, "echo never", "queued")
        arn = client.create_image(imageRecipeArn=inputs["recipe"],
                                  infrastructureConfigurationArn=inputs["infrastructure"])["imageBuildVersionArn"]
        assert client.get_image(imageBuildVersionArn=arn)["image"]["state"]["status"] == "PENDING"
    finally:
        assert running.stop() == 0, running.stderr()
    assert recover_interrupted_builds() == [arn]
