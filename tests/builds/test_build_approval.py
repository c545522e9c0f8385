"""Approval of pipeline images: a TEST workflow with a WaitForAction step pauses the image after its
tests (and its scan); ``kiln image approve`` marks the AMI ``approved`` (a watermark allowed-images
criteria can require) and resumes it; ``kiln image reject`` fails it; approving an image that is not
waiting is one clear error that changes nothing; the wait is an event (webhooks deliver it)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from typing import Any

import pytest
from tests.conftest import Kiln
from tests.scanning.scan_images import ADVISORIES, debian_root, import_advisories

from kiln.errors import AlreadyExists
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.services import build_queue
from kiln.services.builds import records as images
from kiln.services.common.events import list_events
from kiln.services.ec2 import allowed_images as allowed
from kiln.services.ec2 import images as ec2_images
from kiln.services.pipelines.resource import create_image_pipeline
from kiln.services.workflows import executions
from kiln.services.workflows.managed import managed_arn
from kiln.services.workflows.resource import create_workflow

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")

@pytest.fixture
def parent_ami(busybox_copy: Any) -> str:
    from kiln.store import api as store

    root = debian_root(busybox_copy("debianish"))
    bash = root / "bin" / "bash"
    bash.write_text('#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n')
    bash.chmod(0o755)
    return store.import_rootfs(root, name="debianish-parent")


APPROVAL = """\
name: approval
description: Waits for kiln image approve|reject after the tests.
schemaVersion: 1.0
steps:
  - name: Approval
    action: WaitForAction
    timeoutSeconds: 90
"""


def _pipeline(arns: dict[str, str], tmp_path: Any, name: str = "golden") -> str:
    import_advisories(tmp_path / "osv", ADVISORIES)
    approval = f"arn:aws:imagebuilder:local:{DEFAULT_ACCOUNT}:workflow/test/approval/1.0.0/1"
    with contextlib.suppress(AlreadyExists):
        approval = create_workflow({"name": "approval", "semanticVersion": "1.0.0", "type": "TEST",
                                    "data": APPROVAL})["workflowBuildVersionArn"]
    return create_image_pipeline({
        "name": name, "imageRecipeArn": arns["recipe"], "infrastructureConfigurationArn": arns["infrastructure"],
        "distributionConfigurationArn": arns["distribution"],
        "imageScanningConfiguration": {"imageScanningEnabled": True},
        "workflows": [{"workflowArn": managed_arn("BUILD")}, {"workflowArn": managed_arn("TEST")},
                      {"workflowArn": approval}],
    })["imagePipelineArn"]


def _start(pipeline: str) -> tuple[str, threading.Thread]:
    arn = build_queue.start_pipeline_execution({"imagePipelineArn": pipeline}, account=DEFAULT_ACCOUNT)[
        "imageBuildVersionArn"]
    thread = threading.Thread(target=build_queue.build_here, args=(arn, lambda line: None), name="approval-build")
    thread.start()
    deadline = time.monotonic() + 180
    while not executions.list_waiting_workflow_steps()["steps"]:
        assert thread.is_alive() and time.monotonic() < deadline, images.get_image(arn)["state"]
        time.sleep(0.1)
    return arn, thread


def test_approve_marks_and_resumes_reject_fails(make_recipe: Any, kiln: Kiln, tmp_path: Any) -> None:
    pipeline = _pipeline(make_recipe("true", test="true"), tmp_path)
    arn, thread = _start(pipeline)
    try:
        assert images.get_image(arn)["scanState"] == {"status": "COMPLETED"}  # scanned before the wait
        waiting = [e for e in list_events() if e["kind"] == "EC2 Image Builder Workflow Step Waiting"]
        assert waiting and waiting[-1]["arn"] == arn and waiting[-1]["detail"]["stepName"] == "Approval"
        approved = kiln("image", "approve", arn, "--reason", "looks good", "--output", "json")
    finally:
        thread.join(timeout=600)
    assert approved.exit_code == 0, approved.stderr
    image = images.get_image(arn)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    [ami] = [a["image"] for a in image["outputResources"]["amis"] if a["region"] == "local"]
    [shown] = ec2_images.describe_images(image_ids=[ami])["Images"]
    assert [m["WatermarkKey"] for m in shown["ImageWatermarks"]] == [f"{DEFAULT_ACCOUNT}:approved"]
    got = json.loads(kiln("image", "get", arn, "--output", "json").stdout)
    assert got["approval"]["decision"] == "APPROVED" and got["approval"]["reason"] == "looks good"
    allowed.replace_image_criteria([{"ImageWatermarks": [{"WatermarkKey": "*:approved"}]}])
    allowed.enable_allowed_images_settings("audit-mode", include_own_images=True)
    assert ec2_images.describe_images(image_ids=[ami])["Images"][0]["ImageAllowed"] is True

    again = kiln("image", "approve", arn)
    assert again.exit_code == 1 and "is not waiting for an approval (its status is AVAILABLE)" in again.stderr
    assert "Traceback" not in again.stderr

    # another recipe version (the same one would be answered from the build cache, approved already)
    second, thread = _start(_pipeline(make_recipe("true", test="true", version="1.0.1"), tmp_path, "golden-2"))
    try:
        assert kiln("image", "reject", second, "--reason", "CVE backlog").exit_code == 0
    finally:
        thread.join(timeout=600)
    got = json.loads(kiln("image", "get", second, "--output", "json").stdout)
    assert got["approval"]["decision"] == "REJECTED" and got["approval"]["reason"] == "CVE backlog"
    rejected = images.get_image(second)
    assert rejected["state"]["status"] == "FAILED" and "CVE backlog" in rejected["state"]["reason"]
    assert rejected["outputResources"]["amis"] == []
    assert ec2_images.describe_images(filters={"tag:Ec2ImageBuilderArn": [second]})["Images"] == []


def test_approving_an_image_that_is_not_waiting_changes_nothing(make_recipe: Any, kiln: Kiln) -> None:
    arns = make_recipe("true")
    image = build_queue.create_image({"imageRecipeArn": arns["recipe"],
                                      "infrastructureConfigurationArn": arns["infrastructure"]},
                                     account=DEFAULT_ACCOUNT, region=DEFAULT_REGION)["imageBuildVersionArn"]
    refused = kiln("image", "approve", image, "--reason", "early")
    assert refused.exit_code == 1 and "is not waiting for an approval (its status is PENDING)" in refused.stderr
    assert images.get_image(image)["state"]["status"] == "PENDING"
    assert json.loads(kiln("image", "get", image, "--output", "json").stdout)["approval"] is None
    unknown = kiln("image", "reject", image.replace("/1.0.0/1", "/9.9.9/1"))
    assert unknown.exit_code != 0 and "Traceback" not in unknown.stderr
