"""Workflows over the wire: boto3 against ``kiln serve`` for CreateWorkflow, GetWorkflow, ListWorkflows,
CreateImage with workflows, ListWaitingWorkflowSteps, SendWorkflowStepAction, ListWorkflowExecutions and
ListWorkflowStepExecutions, the build running in the server's worker pool."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from tests.api.conftest import ServeProcess, Server, serve_process, server  # noqa: F401
from tests.api.test_api_builds import _inputs, _wait

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")

GATE = """\
name: gated
schemaVersion: 1.0
parameters:
  - name: note
    type: string
    default: none
steps:
  - name: Approve
    action: WaitForAction
    timeoutSeconds: 900
    inputs:
      payload: "{{ $.parameters.note }}"
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


def test_workflow_resources_on_the_wire(server: Server) -> None:  # noqa: F811
    client = server.client()
    created = client.create_workflow(name="gated", semanticVersion="1.0.0", type="BUILD", data=GATE,
                                     clientToken="wf-1")
    arn = created["workflowBuildVersionArn"]
    assert arn == "arn:aws:imagebuilder:local:123456789012:workflow/build/gated/1.0.0/1"
    workflow = client.get_workflow(workflowBuildVersionArn=arn)["workflow"]
    assert (workflow["type"], workflow["data"]) == ("BUILD", GATE)
    assert workflow["parameters"] == [{"name": "note", "type": "string", "defaultValue": ["none"]}]
    listed = client.list_workflows()["workflowVersionList"]
    assert [entry["arn"] for entry in listed] == [arn.rsplit("/", 1)[0]]
    managed = {entry["name"] for entry in client.list_workflows(owner="Amazon")["workflowVersionList"]}
    assert managed == {"build-image", "test-image", "distribute-image",
                       "build-container", "test-container", "distribute-container", "test-and-approve-image"}
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.create_workflow(name="broken", semanticVersion="1.0.0", type="BUILD",
                               data=GATE.replace("WaitForAction", "WaitForGodot"))
    assert "data:9:13" in str(refused.value) and "unknown action 'WaitForGodot'" in str(refused.value)
    assert client.delete_workflow(workflowBuildVersionArn=arn)["workflowBuildVersionArn"] == arn


def _waiting(client: Any, bound: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        steps = client.list_waiting_workflow_steps()["steps"]
        if steps:
            return steps[0]
        time.sleep(0.2)
    pytest.fail("no step came to wait")


def test_a_gated_build_is_resumed_over_the_api(serve_process: ServeProcess, parent_ami: str) -> None:  # noqa: F811
    client = serve_process.client()
    inputs = _inputs(client, parent_ami, "echo built > /etc/built-by-kiln", "gated")
    workflow = client.create_workflow(name="gated", semanticVersion="1.0.0", type="BUILD",
                                      data=GATE)["workflowBuildVersionArn"]
    arn = client.create_image(
        imageRecipeArn=inputs["recipe"], infrastructureConfigurationArn=inputs["infrastructure"],
        imageTestsConfiguration={"imageTestsEnabled": False},
        workflows=[{"workflowArn": workflow, "parameters": [{"name": "note", "value": ["release 7"]}]}],
    )["imageBuildVersionArn"]
    waiting = _waiting(client)
    assert (waiting["imageBuildVersionArn"], waiting["name"], waiting["workflowBuildVersionArn"]) == (
        arn, "Approve", workflow)
    sent = client.send_workflow_step_action(stepExecutionId=waiting["stepExecutionId"], imageBuildVersionArn=arn,
                                            action="RESUME", reason="approved")
    assert sent["stepExecutionId"] == waiting["stepExecutionId"]
    image, _ = _wait(client, arn)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    runs = client.list_workflow_executions(imageBuildVersionArn=arn)["workflowExecutions"]
    assert [(r["type"], r["status"]) for r in runs] == [("BUILD", "COMPLETED"), ("TEST", "SKIPPED"),
                                                        ("DISTRIBUTION", "COMPLETED")] or \
        [(r["type"], r["status"]) for r in runs] == [("BUILD", "COMPLETED"), ("DISTRIBUTION", "COMPLETED")]
    build = runs[0]
    assert build["workflowBuildVersionArn"] == workflow and build["totalStepCount"] == 5
    steps = client.list_workflow_step_executions(workflowExecutionId=build["workflowExecutionId"])["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [("Approve", "COMPLETED"), ("Launch", "COMPLETED"),
                                                         ("Build", "COMPLETED"), ("Capture", "COMPLETED"),
                                                         ("Terminate", "COMPLETED")]
    approve = client.get_workflow_step_execution(stepExecutionId=steps[0]["stepExecutionId"])
    assert json.loads(approve["outputs"]) == {"action": "RESUME", "reason": "approved"}
    assert json.loads(approve["inputs"]) == {"payload": "release 7"}  # as resolved for the step
    execution = client.get_workflow_execution(workflowExecutionId=build["workflowExecutionId"])
    assert execution["imageBuildVersionArn"] == arn and execution["totalStepsSucceeded"] == 5
