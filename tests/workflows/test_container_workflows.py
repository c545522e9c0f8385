"""Container recipes built by the workflow engine: the managed build-container, test-container and
distribute-container workflows reproduce the container steps; a custom BUILD workflow with a
WaitForAction resumed by ``kiln workflow send-action`` and an ``if``-skipped step runs for a container
recipe too."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from tests.builds.test_container_build import container_recipe  # noqa: F401

from kiln.services.builds import records as images
from kiln.services.builds.container import create_and_build_container
from kiln.services.workflows import executions
from kiln.services.workflows.resource import create_workflow

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")

GATED = """\
name: gated-container
schemaVersion: 1.0
parameters:
  - name: collect
    type: boolean
    default: false
steps:
  - name: Approve
    action: WaitForAction
    timeoutSeconds: 600
  - name: LaunchBuildContainer
    action: LaunchInstance
    inputs:
      waitFor: ssmAgent
  - name: ApplyBuildComponents
    action: ExecuteComponents
    inputs:
      instanceId.$: $.stepOutputs.LaunchBuildContainer.instanceId
  - name: Stamp
    action: RunCommand
    if:
      booleanEquals: true
      value: $.parameters.collect
    inputs:
      instanceId.$: $.stepOutputs.LaunchBuildContainer.instanceId
      documentName: AWS-RunShellScript
      parameters:
        commands:
          - "exit 7"
  - name: CreateContainerImage
    action: CreateImage
    inputs:
      instanceId.$: $.stepOutputs.LaunchBuildContainer.instanceId
  - name: TerminateBuildContainer
    action: TerminateInstance
    inputs:
      instanceId.$: $.stepOutputs.LaunchBuildContainer.instanceId
"""

MANAGED_STEPS = [
    ("build", "LaunchBuildContainer", "LaunchInstance", "COMPLETED"),
    ("build", "RunLine8", "RunCommand", "COMPLETED"),
    ("build", "ApplyBuildComponents", "ExecuteComponents", "COMPLETED"),
    ("build", "CreateContainerImage", "CreateImage", "COMPLETED"),
    ("build", "TerminateBuildContainer", "TerminateInstance", "COMPLETED"),
    ("test", "LaunchTestContainer", "LaunchInstance", "COMPLETED"),
    ("test", "ApplyTestComponents", "ExecuteComponents", "COMPLETED"),
    ("test", "TerminateTestContainer", "TerminateInstance", "COMPLETED"),
    ("distribution", "DistributeContainerImage", "DistributeImage", "COMPLETED"),
]


def _steps(image_arn: str) -> list[tuple[str, str, str, str]]:
    return [(s["workflow"], s["name"], s["action"], s["status"]) for s in images.list_steps(image_arn)]


def _executions(image_arn: str) -> list[tuple[str, str]]:
    return [(e["workflowBuildVersionArn"].split("/")[2], e["status"])
            for e in executions.list_workflow_executions(image_arn)["workflowExecutions"]]


def test_the_managed_container_workflows_run_the_container_steps(container_recipe) -> None:  # noqa: F811
    image = create_and_build_container(recipe_arn=container_recipe["recipe"],
                                       infrastructure_arn=container_recipe["infrastructure"])
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    assert _steps(image["arn"]) == MANAGED_STEPS
    assert _executions(image["arn"]) == [("build-container", "COMPLETED"), ("test-container", "COMPLETED"),
                                         ("distribute-container", "COMPLETED")]


def test_a_custom_build_workflow_gates_a_container_build(container_recipe, kiln_home) -> None:  # noqa: F811
    workflow = create_workflow({"name": "gated-container", "semanticVersion": "1.0.0", "type": "BUILD",
                                "data": GATED})["workflowBuildVersionArn"]
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["image"] = create_and_build_container(
                recipe_arn=container_recipe["recipe"], infrastructure_arn=container_recipe["infrastructure"],
                workflows=[{"workflowArn": workflow}])
        except Exception as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, name="gated-container-build")
    thread.start()
    try:
        waiting = _waiting_step()
        sent = subprocess.run(
            [sys.executable, "-m", "kiln", "workflow", "send-action", waiting["stepExecutionId"],
             waiting["imageBuildVersionArn"], "RESUME", "--output", "json"],
            capture_output=True, text=True, timeout=120, env={**os.environ, "KILN_HOME": str(kiln_home)},
        )
        assert sent.returncode == 0, sent.stderr
    finally:
        thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    image = outcome["image"]
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    steps = _steps(image["arn"])
    assert steps[:7] == [
        ("build", "Approve", "WaitForAction", "COMPLETED"),
        ("build", "LaunchBuildContainer", "LaunchInstance", "COMPLETED"),
        ("build", "RunLine8", "RunCommand", "COMPLETED"),
        ("build", "ApplyBuildComponents", "ExecuteComponents", "COMPLETED"),
        ("build", "Stamp", "RunCommand", "SKIPPED"),
        ("build", "CreateContainerImage", "CreateImage", "COMPLETED"),
        ("build", "TerminateBuildContainer", "TerminateInstance", "COMPLETED"),
    ]
    assert steps[7:] == MANAGED_STEPS[-1:]  # workflows without a TEST one skip testing
    assert _executions(image["arn"]) == [("gated-container", "COMPLETED"), ("distribute-container", "COMPLETED")]
    [container] = image["outputResources"]["containers"]
    assert container["imageUris"][0].endswith(":team/web:1.0.0-1")


def _waiting_step(bound: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        steps = executions.list_waiting_workflow_steps()["steps"]
        if steps:
            return steps[0]
        time.sleep(0.1)
    pytest.fail("no step came to wait")


def test_an_ami_only_action_fails_a_container_build_and_leaves_nothing(container_recipe) -> None:  # noqa: F811
    from kiln.runtime.instances import list_instances
    from kiln.services.builds.workflow import BuildFailed
    from kiln.store.layout import Layout

    sanitizing = """\
name: sanitizing
schemaVersion: 1.0
steps:
  - name: LaunchBuildContainer
    action: LaunchInstance
    inputs:
      waitFor: ssmAgent
  - name: Stamp
    action: SanitizeInstance
    inputs:
      instanceId.$: $.stepOutputs.LaunchBuildContainer.instanceId
"""
    workflow = create_workflow({"name": "sanitizing", "semanticVersion": "1.0.0", "type": "BUILD",
                                "data": sanitizing})["workflowBuildVersionArn"]
    with pytest.raises(BuildFailed) as failed:
        create_and_build_container(recipe_arn=container_recipe["recipe"],
                                   infrastructure_arn=container_recipe["infrastructure"],
                                   workflows=[{"workflowArn": workflow}])
    assert "step Stamp: SanitizeInstance is for AMI builds" in failed.value.message
    [image] = images.list_images()
    assert image["state"]["status"] == "FAILED"
    assert _executions(image["arn"]) == [("sanitizing", "FAILED")]
    assert not any(ref.startswith("team/web:") for ref in Layout.for_region("local").refs())
    assert not list_instances(states=("pending", "running", "stopping", "stopped"))
