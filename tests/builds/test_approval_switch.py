"""The approval switch (``--approval``, ``kiln:approval``) puts kiln's managed test-and-approve-image in a
pipeline's workflows; an approval is a property of the image build, so every AMI the build makes carries
``approved`` — distribution copies in two regions and another account included, also copies made before the
decision; a build answered from the cache still scans (new advisories fail it under scanResultCondition)
and still waits for approval (its twin's decision is not inherited)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.builds.distribution_helpers import CONSUMER, REGIONS, make_world, tagged_amis
from tests.conftest import Kiln
from tests.scanning.scan_images import ADVISORIES, debian_root, import_advisories

from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.services import build_queue
from kiln.services.builds import records as images
from kiln.services.pipelines.resource import create_image_pipeline, get_image_pipeline
from kiln.services.workflows import executions
from kiln.services.workflows.managed import managed_arn
from kiln.services.workflows.managed_approval import approval_arn

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")
APPROVED = f"{DEFAULT_ACCOUNT}:approved"
MANAGED_WITH_APPROVAL = [{"workflowArn": managed_arn("BUILD")}, {"workflowArn": approval_arn()},
                         {"workflowArn": managed_arn("DISTRIBUTION")}]


@pytest.fixture
def parent_ami(busybox_copy: Any) -> str:
    from kiln.store import api as store

    root = debian_root(busybox_copy("debianish"))
    bash = root / "bin" / "bash"
    bash.write_text('#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n')
    bash.chmod(0o755)
    return store.import_rootfs(root, name="debianish-parent")


def _workflows(pipeline: str) -> list[dict[str, Any]]:
    return get_image_pipeline(pipeline)["imagePipeline"].get("workflows")


def _apply(kiln: Kiln, tmp_path: Path, document: dict[str, Any]) -> Any:
    path = tmp_path / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump({"kind": "ImagePipeline", **document}))
    return kiln("apply", "-f", str(path), "--output", "json")


def test_the_switch_writes_the_managed_approval_workflow(make_recipe: Any, kiln: Kiln, tmp_path: Path) -> None:
    arns = make_recipe("true", test="true")
    base = {"imageRecipeArn": arns["recipe"], "infrastructureConfigurationArn": arns["infrastructure"]}
    body = tmp_path / "body.json"
    body.write_text(json.dumps({**base, "name": "cli"}))
    created = kiln("pipeline", "create", "--cli-input-json", f"file://{body}", "--approval", "--output", "json")
    assert created.exit_code == 0, created.stderr
    cli = json.loads(created.stdout)["imagePipelineArn"]
    wire = create_image_pipeline({**base, "name": "wire", "workflows": MANAGED_WITH_APPROVAL})["imagePipelineArn"]
    assert _workflows(cli) == _workflows(wire) == MANAGED_WITH_APPROVAL

    applied = _apply(kiln, tmp_path, {**base, "name": "applied", "kiln:approval": True,
                                      "workflows": [{"workflowArn": managed_arn("BUILD")},
                                                    {"workflowArn": managed_arn("TEST"), "onFailure": "ABORT"}]})
    assert applied.exit_code == 0, applied.stderr
    [outcome] = json.loads(applied.stdout)["resources"]
    assert _workflows(outcome["arn"]) == [{"workflowArn": managed_arn("BUILD")},
                                          {"workflowArn": approval_arn(), "onFailure": "ABORT"}]

    body.write_text(json.dumps({**base, "imagePipelineArn": wire.replace("/wire", "/cli")}))
    assert kiln("pipeline", "update", "--cli-input-json", f"file://{body}").exit_code == 0
    assert _workflows(cli) is None  # PUT semantics: without the switch, the body's (no) workflows
    assert kiln("pipeline", "update", "--cli-input-json", f"file://{body}", "--approval").exit_code == 0
    assert _workflows(cli) == MANAGED_WITH_APPROVAL

    custom = {**base, "name": "custom", "kiln:approval": True,
              "workflows": [{"workflowArn": managed_arn("BUILD")}]}
    refused = _apply(kiln, tmp_path, custom)
    assert refused.exit_code != 0 and "Traceback" not in refused.stderr
    assert "kiln:approval" in refused.stderr and "names none" in refused.stderr and approval_arn() in refused.stderr
    wrong = _apply(kiln, tmp_path, {**base, "name": "wrong", "kiln:approval": "maybe"})
    assert wrong.exit_code != 0 and "kiln:approval" in wrong.stderr
    names = {p["name"] for p in json.loads(kiln("pipeline", "list", "--output", "json").stdout)["imagePipelineList"]}
    assert names == {"cli", "wire", "applied"}  # nothing of the refused documents


def _two_region_pipeline(parent_ami: str, tmp_path: Path, kiln: Kiln, scanning: dict[str, Any] | None = None,
                         workflows: list[dict[str, Any]] | None = None) -> str:
    from tests.builds.distribution_helpers import make_build_inputs

    make_world()
    arns = make_build_inputs(parent_ami, [
        {"region": DEFAULT_REGION},
        {"region": REGIONS[0]},
        {"region": REGIONS[1], "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER]}},
    ])
    document = {"name": "golden", "imageRecipeArn": arns["recipe"],
                "infrastructureConfigurationArn": arns["infrastructure"],
                "distributionConfigurationArn": arns["distribution"],
                **({"imageScanningConfiguration": scanning} if scanning else {}),
                **({"workflows": workflows} if workflows else {"kiln:approval": True})}
    applied = _apply(kiln, tmp_path, document)
    assert applied.exit_code == 0, applied.stderr
    return json.loads(applied.stdout)["resources"][-1]["arn"]


def _start(pipeline: str) -> tuple[str, threading.Thread, dict[str, Any]]:
    arn = build_queue.start_pipeline_execution({"imagePipelineArn": pipeline}, account=DEFAULT_ACCOUNT)[
        "imageBuildVersionArn"]
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(build_queue.build_here(arn, lambda line: None)),
                              name="approval-build")
    thread.start()
    deadline = time.monotonic() + 240
    while not [s for s in executions.list_waiting_workflow_steps()["steps"] if s["imageBuildVersionArn"] == arn]:
        assert thread.is_alive() and time.monotonic() < deadline, images.get_image(arn)["state"]
        time.sleep(0.1)
    return arn, thread, result


def _marks(ami: str, region: str = DEFAULT_REGION) -> list[dict[str, str | None]]:
    """The AMI's watermarks as EC2 shows them (whoever owns it)."""
    from kiln.db.engine import session
    from kiln.store.watermarks import watermarks_by_image

    with session() as db:
        return [mark.to_ec2() for mark in watermarks_by_image(db, [ami]).get(ami, [])]


def _approve(kiln: Kiln, arn: str, thread: threading.Thread) -> None:
    try:
        done = kiln("image", "approve", arn, "--reason", "reviewed")
        assert done.exit_code == 0, done.stderr
    finally:
        thread.join(timeout=600)
    assert images.get_image(arn)["state"]["status"] == "AVAILABLE", images.get_image(arn)["state"]


def _all_approved(arn: str) -> str:
    """Every AMI of the build carries ``approved``, first attached to its own AMI in the build region."""
    amis = tagged_amis(arn)
    assert {(region, owner) for region, owner, _ in amis} == {
        (DEFAULT_REGION, DEFAULT_ACCOUNT), (REGIONS[0], DEFAULT_ACCOUNT), (REGIONS[1], DEFAULT_ACCOUNT),
        (REGIONS[1], CONSUMER)}
    [own] = [a["image"] for a in images.get_image(arn)["outputResources"]["amis"]
             if (a["region"], a["accountId"]) == (DEFAULT_REGION, DEFAULT_ACCOUNT)]
    for region, _, ami in amis:
        [mark] = [m for m in _marks(ami, region) if m["WatermarkKey"] == APPROVED]
        assert (mark["SourceImageId"], mark["SourceImageRegion"]) == (own, DEFAULT_REGION), (region, ami)
    return own


def test_approval_marks_every_ami_and_a_cached_build_waits_again(parent_ami: str, kiln: Kiln,
                                                                   tmp_path: Path) -> None:
    pipeline = _two_region_pipeline(parent_ami, tmp_path, kiln)
    first, thread, _ = _start(pipeline)
    assert tagged_amis(first) and all(m["WatermarkKey"] != APPROVED
                                      for _, _, ami in tagged_amis(first) for m in _marks(ami, DEFAULT_REGION))
    _approve(kiln, first, thread)
    first_own = _all_approved(first)  # the copies in both regions and the consumer's, made after the decision

    second, thread, _ = _start(pipeline)  # the same inputs: answered from the cache, and waiting again
    try:
        assert images.get_row(second).cached_from == first
        steps = {s["name"]: s["status"] for s in images.list_steps(second)}
        assert steps["ReuseCachedImage"] == "COMPLETED" and steps["ApproveImage"] == "WAITING"
        assert steps["LaunchTestInstance"] == steps["ApplyTestComponents"] == "SKIPPED"
        own = images.get_row(second).intermediate_ami_id
        assert APPROVED not in [m["WatermarkKey"] for m in _marks(own, DEFAULT_REGION)]  # not its twin's decision
    except BaseException:
        kiln("image", "reject", second)
        thread.join(timeout=600)
        raise
    _approve(kiln, second, thread)
    assert _all_approved(second) != first_own


DISTRIBUTE_THEN_WAIT = """\
name: distribute-then-approve
description: Copies first, approval after.
schemaVersion: 1.0
steps:
  - name: DistributeImage
    action: DistributeImage
  - name: Approval
    action: WaitForAction
    timeoutSeconds: 300
  - name: ModifyImageAttributes
    action: ModifyImageAttributes
    inputs:
      distributedImages.$: $.stepOutputs.DistributeImage.distributedImages
"""


def test_approval_reaches_copies_made_before_it(parent_ami: str, kiln: Kiln, tmp_path: Path) -> None:
    from kiln.services.workflows.resource import create_workflow

    distribution = create_workflow({"name": "distribute-then-approve", "semanticVersion": "1.0.0",
                                    "type": "DISTRIBUTION", "data": DISTRIBUTE_THEN_WAIT})["workflowBuildVersionArn"]
    pipeline = _two_region_pipeline(parent_ami, tmp_path, kiln, workflows=[
        {"workflowArn": managed_arn("BUILD")}, {"workflowArn": distribution}])
    arn, thread, _ = _start(pipeline)
    assert len(tagged_amis(arn)) == 4  # copied everywhere, then waiting
    _approve(kiln, arn, thread)
    _all_approved(arn)


GATE = {"imageScanningEnabled": True, "imageScanningTypes": ["ON_DEMAND_AMI_CVE"],
        "scanResultCondition": {"maximumSeverityLabel": "HIGH"}}


def test_a_cached_build_is_scanned_again(parent_ami: str, make_recipe: Any, tmp_path: Path) -> None:
    import_advisories(tmp_path / "osv", ADVISORIES[1:])  # nothing above HIGH yet
    arns = make_recipe("true", test="true")

    def build() -> dict[str, Any]:
        started = build_queue.create_image({
            "imageRecipeArn": arns["recipe"], "infrastructureConfigurationArn": arns["infrastructure"],
            "imageScanningConfiguration": GATE}, account=DEFAULT_ACCOUNT, region=DEFAULT_REGION)
        return build_queue.build_here(started["imageBuildVersionArn"], progress=lambda line: None)

    first = build()
    assert first["state"]["status"] == "AVAILABLE", first["state"]
    import_advisories(tmp_path / "osv", ADVISORIES)  # a CRITICAL with a fix in the image's openssl
    second = build()
    assert images.get_row(second["arn"]).cached_from == first["arn"]
    assert second["state"]["status"] == "FAILED" and "DSA-5000-1" in second["state"]["reason"]
    assert second["outputResources"]["amis"] == [] and tagged_amis(second["arn"]) == []
    assert [s["status"] for s in images.list_steps(second["arn"]) if s["name"] == "ScanImage"] == ["FAILED"]
    assert tagged_amis(first["arn"])  # the cached image itself stays


def _steps(arn: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in images.list_steps(arn)}


def test_without_a_test_phase_the_image_still_waits_and_a_resume_on_the_step_approves(
        make_recipe: Any, kiln: Kiln) -> None:
    from kiln.services.workflows.managed_approval import with_approval

    arns = make_recipe("true")  # no test phase: the tests are skipped, the approval is not
    refused = kiln("image", "create", "--recipe", arns["recipe"], "--infrastructure", arns["infrastructure"],
                   "--workflow", managed_arn("BUILD"), "--approval")
    assert refused.exit_code != 0 and "--approval" in refused.stderr and "names none" in refused.stderr
    assert images.list_images() == []
    arn = build_queue.create_image({"imageRecipeArn": arns["recipe"],
                                    "infrastructureConfigurationArn": arns["infrastructure"],
                                    "workflows": with_approval(None)}, account=DEFAULT_ACCOUNT,
                                   region=DEFAULT_REGION)["imageBuildVersionArn"]
    thread = threading.Thread(target=build_queue.build_here, args=(arn, lambda line: None), name="no-tests")
    thread.start()
    try:
        deadline = time.monotonic() + 240
        while _steps(arn).get("ApproveImage", {}).get("status") != "WAITING":
            assert thread.is_alive() and time.monotonic() < deadline, images.get_image(arn)["state"]
            time.sleep(0.1)
        steps = _steps(arn)
        assert steps["LaunchTestInstance"]["status"] == "SKIPPED"
        sent = kiln("workflow", "send-action", steps["ApproveImage"]["stepExecutionId"], arn, "RESUME",
                    "--reason", "ok by SendWorkflowStepAction")
        assert sent.exit_code == 0, sent.stderr
    finally:
        thread.join(timeout=600)
    image = images.get_image(arn)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    [ami] = [a["image"] for a in image["outputResources"]["amis"]]
    assert [m["WatermarkKey"] for m in _marks(ami)] == [APPROVED]


GATED_BUILD = """\
name: approve-then-capture
description: build-image with the approval ahead of CreateImage.
schemaVersion: 1.0
steps:
  - name: LaunchBuildInstance
    action: LaunchInstance
    inputs:
      waitFor: ssmAgent
  - name: ApplyBuildComponents
    action: ExecuteComponents
    inputs:
      instanceId.$: $.stepOutputs.LaunchBuildInstance.instanceId
  - name: Approval
    action: WaitForAction
    timeoutSeconds: 300
  - name: CreateOutputAMI
    action: CreateImage
    inputs:
      instanceId.$: $.stepOutputs.LaunchBuildInstance.instanceId
  - name: TerminateBuildInstance
    action: TerminateInstance
    inputs:
      instanceId.$: $.stepOutputs.LaunchBuildInstance.instanceId
"""


def test_an_approval_before_the_ami_exists_marks_it_and_its_copies(parent_ami: str, kiln: Kiln,
                                                                  tmp_path: Path) -> None:
    from kiln.services.workflows.resource import create_workflow

    gated = create_workflow({"name": "approve-then-capture", "semanticVersion": "1.0.0", "type": "BUILD",
                             "data": GATED_BUILD})["workflowBuildVersionArn"]
    pipeline = _two_region_pipeline(parent_ami, tmp_path, kiln, workflows=[{"workflowArn": gated}])
    arn, thread, _ = _start(pipeline)
    assert tagged_amis(arn) == []  # no AMI yet when it is approved
    _approve(kiln, arn, thread)
    _all_approved(arn)
