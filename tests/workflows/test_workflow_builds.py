"""Builds running workflow documents: the managed ones reproduce kiln's steps; a custom build
workflow with an ``if`` skip and ``onFailure: Continue``; WaitForAction resumed from another process
(the CLI), stopped, and timed out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from kiln.services.builds import records as images
from kiln.services.builds.workflow import BuildFailed, create_and_build
from kiln.services.workflows import executions
from kiln.services.workflows.resource import create_workflow

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")

CUSTOM = """\
name: custom-build
schemaVersion: 1.0
parameters:
  - name: collect
    type: boolean
    default: true
  - name: greeting
    type: string
    default: hello
steps:
  - name: Launch
    action: LaunchInstance
    inputs:
      waitFor: ssmAgent
  - name: Build
    action: ExecuteComponents
    inputs:
      instanceId.$: $.stepOutputs.Launch.instanceId
  - name: Greet
    action: RunCommand
    inputs:
      instanceId.$: $.stepOutputs.Launch.instanceId
      documentName: AWS-RunShellScript
      parameters:
        commands:
          - "echo {{ $.parameters.greeting }} > /etc/greeting"
  - name: Broken
    action: RunCommand
    onFailure: Continue
    inputs:
      instanceId.$: $.stepOutputs.Launch.instanceId
      documentName: AWS-RunShellScript
      parameters:
        commands:
          - "exit 4"
  - name: Inventory
    action: CollectImageMetadata
    if:
      booleanEquals: true
      value: $.parameters.collect
    inputs:
      instanceId.$: $.stepOutputs.Launch.instanceId
  - name: Capture
    action: CreateImage
    inputs:
      instanceId.$: $.stepOutputs.Launch.instanceId
  - name: Terminate
    action: TerminateInstance
    inputs:
      instanceId.$: $.stepOutputs.Launch.instanceId
outputs:
  - name: ImageId
    value: $.stepOutputs.Capture.imageId
"""

GATE = """\
name: gated-build
schemaVersion: 1.0
steps:
  - name: Approve
    action: WaitForAction
    timeoutSeconds: {timeout}
  - name: Launch
    action: LaunchInstance
    inputs:
      waitFor: ssmAgent
  - name: Build
    action: ExecuteComponents
    inputs:
      instanceId.$: $.stepOutputs.Launch.instanceId
  - name: Capture
    action: CreateImage
    inputs:
      instanceId.$: $.stepOutputs.Launch.instanceId
  - name: Terminate
    action: TerminateInstance
    inputs:
      instanceId.$: $.stepOutputs.Launch.instanceId
"""


def _build(arns: dict[str, str], **options: Any) -> dict[str, Any]:
    return create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"],
                            distribution_arn=arns["distribution"], **options)


def _workflow(data: str, name: str) -> str:
    return create_workflow({"name": name, "semanticVersion": "1.0.0", "type": "BUILD", "data": data})[
        "workflowBuildVersionArn"]


def _steps(image_arn: str) -> list[tuple[str, str, str]]:
    return [(s["workflow"], s["name"], s["status"]) for s in images.list_steps(image_arn)]


def _live_instances() -> list[str]:
    from kiln.runtime.instances import list_instances

    return [i.id for i in list_instances(states=("pending", "running", "stopping", "stopped"))]


def test_the_managed_workflows_run_kilns_steps_as_executions(make_recipe) -> None:
    arns = make_recipe("echo built > /etc/built", test="grep -q built /etc/built")
    image = _build(arns)
    assert image["state"]["status"] == "AVAILABLE"
    assert _steps(image["arn"]) == [
        ("build", "LaunchBuildInstance", "COMPLETED"), ("build", "ApplyBuildComponents", "COMPLETED"),
        ("build", "InventoryCollection", "COMPLETED"), ("build", "RunSanitizeScript", "COMPLETED"),
        ("build", "CreateOutputAMI", "COMPLETED"), ("build", "TerminateBuildInstance", "COMPLETED"),
        ("test", "LaunchTestInstance", "COMPLETED"), ("test", "ApplyTestComponents", "COMPLETED"),
        ("test", "TerminateTestInstance", "COMPLETED"),
        ("distribution", "DistributeImage", "COMPLETED"), ("distribution", "ModifyImageAttributes", "COMPLETED"),
        ("distribution", "ExportImage", "SKIPPED"),
    ]
    runs = executions.list_workflow_executions(image["arn"])["workflowExecutions"]
    assert [(r["type"], r["status"], r["totalStepCount"], r["totalStepsSucceeded"], r["totalStepsSkipped"])
            for r in runs] == [("BUILD", "COMPLETED", 6, 6, 0), ("TEST", "COMPLETED", 3, 3, 0),
                               ("DISTRIBUTION", "COMPLETED", 3, 2, 1)]
    assert runs[0]["workflowBuildVersionArn"].endswith(":aws:workflow/build/build-image/1.0.0/1")
    steps = executions.list_workflow_step_executions(runs[0]["workflowExecutionId"])["steps"]
    launch = executions.get_workflow_step_execution(steps[0]["stepExecutionId"])
    assert launch["action"] == "LaunchInstance" and json.loads(launch["outputs"])["instanceId"].startswith("i-")
    created = executions.get_workflow_step_execution(steps[4]["stepExecutionId"])
    assert json.loads(created["outputs"])["imageId"] == image["outputResources"]["amis"][0]["image"]


def test_a_build_without_test_phases_skips_the_test_workflow(make_recipe) -> None:
    image = _build(make_recipe("true"))
    assert ("test", "ApplyTestComponents", "SKIPPED") in _steps(image["arn"])
    assert not any(name == "LaunchTestInstance" for _, name, _ in _steps(image["arn"]))
    runs = executions.list_workflow_executions(image["arn"])["workflowExecutions"]
    assert [(r["type"], r["status"]) for r in runs][1] == ("TEST", "SKIPPED")


def test_a_custom_build_workflow_skips_on_if_and_continues_past_a_failure(make_recipe) -> None:
    from kiln.runtime import instances
    from kiln.runtime.exec import exec_in
    from kiln.services.ec2.instances import run_instance

    arn = _workflow(CUSTOM, "custom-build")
    arns = make_recipe("echo built > /etc/built", test="grep -q hi /etc/greeting")
    image = _build(arns, workflows=[{"workflowArn": arn, "parameters": [
        {"name": "collect", "value": ["false"]}, {"name": "greeting", "value": ["hi"]}]}])
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    steps = _steps(image["arn"])
    assert steps[:7] == [("build", "Launch", "COMPLETED"), ("build", "Build", "COMPLETED"),
                         ("build", "Greet", "COMPLETED"), ("build", "Broken", "FAILED"),
                         ("build", "Inventory", "SKIPPED"), ("build", "Capture", "COMPLETED"),
                         ("build", "Terminate", "COMPLETED")]
    assert not any(workflow == "test" for workflow, _, _ in steps)  # no TEST workflow given: no tests
    assert [s["name"] for s in images.list_steps(image["arn"]) if s["workflow"] == "distribution"] == [
        "DistributeImage", "ModifyImageAttributes", "ExportImage"]  # the managed distribution still runs
    runs = executions.list_workflow_executions(image["arn"])["workflowExecutions"]
    assert (runs[0]["status"], runs[0]["totalStepsFailed"], runs[0]["totalStepsSkipped"]) == ("COMPLETED", 1, 1)
    assert "osVersion" not in image  # the inventory step was skipped
    instance = run_instance(image["outputResources"]["amis"][0]["image"])
    try:
        assert exec_in(instance.id, ["cat", "/etc/greeting"], timeout=30).stdout.strip() == "hi"
    finally:
        instances.terminate(instance.id, force=True)
    assert not _live_instances()


def _start_in_thread(arns: dict[str, str], workflow: str) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["image"] = _build(arns, tests_enabled=False, workflows=[{"workflowArn": workflow}])
        except Exception as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, name="gated-build")
    thread.start()
    return thread, outcome


def _waiting_step(bound: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        steps = executions.list_waiting_workflow_steps()["steps"]
        if steps:
            return steps[0]
        time.sleep(0.1)
    pytest.fail("no step came to wait")


def test_wait_for_action_resumed_from_another_process(make_recipe, kiln_home) -> None:
    arns = make_recipe("echo built > /etc/built")
    thread, outcome = _start_in_thread(arns, _workflow(GATE.format(timeout=600), "gated-build"))
    try:
        waiting = _waiting_step()
        image_arn = waiting["imageBuildVersionArn"]
        assert images.get_image(image_arn)["state"]["status"] == "CREATING"
        assert not _live_instances()  # nothing launched before the approval
        sent = subprocess.run(
            [sys.executable, "-m", "kiln", "workflow", "send-action", waiting["stepExecutionId"], image_arn,
             "RESUME", "--reason", "approved by the release manager", "--output", "json"],
            capture_output=True, text=True, timeout=120, env={**os.environ, "KILN_HOME": str(kiln_home)},
        )
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["stepExecutionId"] == waiting["stepExecutionId"]
    finally:
        thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    image = outcome["image"]
    assert image["state"]["status"] == "AVAILABLE"
    step = executions.get_workflow_step_execution(waiting["stepExecutionId"])
    assert step["status"] == "COMPLETED"
    from kiln.services.common.events import list_events

    [event] = [e for e in list_events() if e["kind"] == "EC2 Image Builder Workflow Step Waiting"]
    assert event["detail"]["stepExecutionId"] == waiting["stepExecutionId"]
    assert json.loads(step["outputs"]) == {"action": "RESUME", "reason": "approved by the release manager"}
    assert executions.list_waiting_workflow_steps()["steps"] == []
    again = subprocess.run(
        [sys.executable, "-m", "kiln", "workflow", "send-action", waiting["stepExecutionId"], image["arn"], "STOP"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "KILN_HOME": str(kiln_home)},
    )
    assert again.returncode != 0 and "only a WAITING step takes an action" in again.stderr


def test_wait_for_action_stopped_fails_the_image(make_recipe) -> None:
    arns = make_recipe("echo built > /etc/built")
    thread, outcome = _start_in_thread(arns, _workflow(GATE.format(timeout=600), "gated-build"))
    try:
        waiting = _waiting_step()
        executions.send_workflow_step_action(waiting["stepExecutionId"], waiting["imageBuildVersionArn"], "STOP",
                                             "not approved")
    finally:
        thread.join(timeout=600)
    assert isinstance(outcome.get("error"), BuildFailed)
    image = images.get_image(waiting["imageBuildVersionArn"])
    assert image["state"]["status"] == "FAILED"
    assert "stopped by SendWorkflowStepAction: not approved" in image["state"]["reason"]
    runs = executions.list_workflow_executions(image["arn"])["workflowExecutions"]
    assert runs[0]["status"] == "FAILED" and runs[0]["totalStepsFailed"] == 1
    assert image["outputResources"]["amis"] == [] and not _live_instances()


def test_wait_for_action_times_out(make_recipe) -> None:
    arns = make_recipe("echo built > /etc/built")
    with pytest.raises(BuildFailed, match="timed out after 1 seconds"):
        _build(arns, tests_enabled=False,
               workflows=[{"workflowArn": _workflow(GATE.format(timeout=1), "gated-build")}])
    image = images.list_images(name="web")[-1]
    assert image["state"]["status"] == "FAILED"
    assert _steps(image["arn"])[0] == ("build", "Approve", "FAILED")


def test_a_failed_test_workflow_with_on_failure_continue_lets_the_image_through(make_recipe, kiln, tmp_path) -> None:
    from kiln.services.workflows.managed import managed_arn

    workflows = tmp_path / "workflows.json"
    workflows.write_text(json.dumps([{"workflowArn": managed_arn("TEST"), "onFailure": "CONTINUE"}]))
    arns = make_recipe("echo built > /etc/built", test="echo the test failed; exit 3")
    result = kiln("image", "create", "--recipe", arns["recipe"], "--infrastructure", arns["infrastructure"],
                  "--distribution", arns["distribution"], "--workflow", managed_arn("BUILD"), "--output", "json",
                  "--workflows-file", str(workflows))
    assert result.exit_code == 0, result.stderr
    image = json.loads(result.stdout)["image"]
    assert image["state"]["status"] == "AVAILABLE"
    runs = kiln("workflow", "executions", image["arn"], "--output", "json")
    assert [(r["type"], r["status"]) for r in json.loads(runs.stdout)["workflowExecutions"]] == [
        ("BUILD", "COMPLETED"), ("TEST", "FAILED"), ("DISTRIBUTION", "COMPLETED")]
    assert ("test", "ApplyTestComponents", "FAILED") in _steps(image["arn"])
    assert not _live_instances()  # the failed workflow's test instance went with it



def test_a_waiting_image_can_be_cancelled(make_recipe) -> None:
    from kiln.services.builds.workflow import BuildCancelled

    arns = make_recipe("echo built > /etc/built")
    thread, outcome = _start_in_thread(arns, _workflow(GATE.format(timeout=600), "gated-build"))
    try:
        waiting = _waiting_step()
        images.request_cancel(waiting["imageBuildVersionArn"])
    finally:
        thread.join(timeout=600)
    assert isinstance(outcome.get("error"), BuildCancelled)
    image = images.get_image(waiting["imageBuildVersionArn"])
    assert image["state"]["status"] == "CANCELLED"
    runs = executions.list_workflow_executions(image["arn"])["workflowExecutions"]
    assert runs[0]["status"] == "CANCELLED"
    assert executions.get_workflow_step_execution(waiting["stepExecutionId"])["status"] == "CANCELLED"
    assert executions.list_waiting_workflow_steps()["steps"] == []


def test_a_step_past_its_timeout_fails(make_recipe) -> None:
    slow = GATE.replace("  - name: Approve\n    action: WaitForAction\n    timeoutSeconds: {timeout}\n", "").replace(
        "  - name: Build\n    action: ExecuteComponents\n", "  - name: Build\n    action: ExecuteComponents\n"
        "    timeoutSeconds: 1\n")
    assert "timeoutSeconds: 1" in slow and "WaitForAction" not in slow
    arns = make_recipe("sleep 3")
    with pytest.raises(BuildFailed, match="step Build timed out after 1 seconds"):
        _build(arns, tests_enabled=False, workflows=[{"workflowArn": _workflow(slow, "slow-build")}])
    image = images.list_images(name="web")[-1]
    assert image["state"]["status"] == "FAILED"
    assert _steps(image["arn"])[:2] == [("build", "Launch", "COMPLETED"), ("build", "Build", "FAILED")]
    assert not _live_instances()


def test_apply_runs_an_image_documents_workflow_named_in_the_same_file(kiln, tmp_path, parent_ami) -> None:
    import yaml
    from tests.builds.conftest import component_doc

    custom = CUSTOM.replace("    default: hello\n", "    default: from-apply\n")
    documents = [
        {"kind": "Image", "imageRecipeArn": "image-recipe/web/1.0.0",
         "infrastructureConfigurationArn": "infrastructure-configuration/web-infra",
         "imageTestsConfiguration": {"imageTestsEnabled": False},
         "workflows": [{"workflowArn": "workflow/build/custom-build/1.0.x"}]},
        {"kind": "Workflow", "name": "custom-build", "semanticVersion": "1.0.0", "type": "BUILD", "data": custom},
        {"kind": "Component", "name": "web-setup", "semanticVersion": "1.0.0", "platform": "Linux",
         "data": component_doc("web-setup", "echo built > /etc/built")},
        {"kind": "InfrastructureConfiguration", "name": "web-infra", "subnetId": "none"},
        {"kind": "ImageRecipe", "name": "web", "semanticVersion": "1.0.0", "parentImage": parent_ami,
         "components": [{"componentArn": "component/web-setup/1.0.0"}]},
    ]
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    result = kiln("apply", "-f", str(path), "--wait")
    assert result.exit_code == 0, result.stderr
    [arn] = [line.split()[0] for line in result.stdout.splitlines() if ":image/" in line]
    image = images.get_image(arn)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    assert [name for _, name, _ in _steps(arn)][:7] == ["Launch", "Build", "Greet", "Broken", "Inventory", "Capture",
                                                       "Terminate"]
    runs = executions.list_workflow_executions(arn)["workflowExecutions"]
    assert runs[0]["workflowBuildVersionArn"].endswith(":workflow/build/custom-build/1.0.0/1")
