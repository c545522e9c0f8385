"""Workflows as Image Builder resources: create, get, list, build versions, delete, apply; documents
validated with file:line:column errors, and nothing created by a refused one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln.errors import InvalidInput
from kiln.services.workflows import resource

WAIT = """\
name: approve-then-build
description: waits for a person, then builds
schemaVersion: 1.0
parameters:
  - name: approve
    type: boolean
    default: true
steps:
  - name: Approve
    action: WaitForAction
    timeoutSeconds: 600
    if:
      booleanEquals: true
      value: $.parameters.approve
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
outputs:
  - name: ImageId
    value: $.stepOutputs.Capture.imageId
"""


def _create(data: str = WAIT, name: str = "approve-then-build", version: str = "1.0.0", kind: str = "BUILD") -> str:
    return resource.create_workflow({"name": name, "semanticVersion": version, "type": kind, "data": data})[
        "workflowBuildVersionArn"]


def test_a_workflow_is_created_got_listed_and_deleted() -> None:
    arn = _create()
    assert arn == "arn:aws:imagebuilder:local:123456789012:workflow/build/approve-then-build/1.0.0/1"
    got = resource.get_workflow("arn:aws:imagebuilder:local:123456789012:workflow/build/approve-then-build/x.x.x")
    workflow = got["workflow"]
    assert (workflow["arn"], workflow["type"], workflow["owner"]) == (arn, "BUILD", "123456789012")
    assert workflow["parameters"] == [{"name": "approve", "type": "boolean", "defaultValue": ["true"]}]
    assert got["latestVersionReferences"]["latestVersionArn"] == arn
    assert _create() == arn  # the same version and content again: the same build
    listed = resource.list_workflows()["workflowVersionList"]
    assert [entry["arn"] for entry in listed] == [arn.rsplit("/", 1)[0]]
    builds = resource.list_workflow_build_versions(arn.rsplit("/", 1)[0])["workflowSummaryList"]
    assert [entry["arn"] for entry in builds] == [arn]
    assert resource.delete_workflow(arn)["workflowBuildVersionArn"] == arn
    assert resource.list_workflows()["workflowVersionList"] == []


def test_the_managed_workflows_are_amazons() -> None:
    from kiln.services.workflows.configure import resolve_workflows
    from kiln.services.workflows.managed import managed_arn

    resolve_workflows(None)  # seeds them when the database lacks them
    listed = resource.list_workflows(owner="Amazon")["workflowVersionList"]
    assert {(entry["name"], entry["type"], entry["owner"]) for entry in listed} == {
        ("build-image", "BUILD", "Amazon"), ("test-image", "TEST", "Amazon"),
        ("distribute-image", "DISTRIBUTION", "Amazon"), ("build-container", "BUILD", "Amazon"),
        ("test-container", "TEST", "Amazon"), ("distribute-container", "DISTRIBUTION", "Amazon"),
        ("test-and-approve-image", "TEST", "Amazon")}
    arn = managed_arn("BUILD", "us-east-1")
    assert arn == "arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1"
    import yaml

    document = yaml.safe_load(resource.get_workflow(arn)["workflow"]["data"])
    steps = [step["name"] for step in document["steps"]]
    assert steps == ["LaunchBuildInstance", "ApplyBuildComponents", "InventoryCollection", "RunSanitizeScript",
                     "CreateOutputAMI", "TerminateBuildInstance"]
    with pytest.raises(Exception, match="Amazon-managed"):
        resource.delete_workflow(arn)


@pytest.mark.parametrize(("change", "where", "message"), [
    (("    action: CreateImage\n", "    action: MakeAnImage\n"), "24:13", "unknown action 'MakeAnImage'"),
    (("    timeoutSeconds: 600\n", "    timeoutSeconds: 0\n"), "11:21",
     "timeoutSeconds of WaitForAction must be a whole number of seconds from 1 to 604800"),
    (("    timeoutSeconds: 600\n", "    timeoutSeconds: 700000\n"), "11:21", "from 1 to 604800"),
    (("instanceId.$: $.stepOutputs.Launch.instanceId\n  - name: Capture",
      "instanceId.$: $.stepOutputs.Lunch.instanceId\n  - name: Capture"), "22:21",
     "no step 'Lunch' runs before this one"),
    (("value: $.parameters.approve", "value: $.parameters.approved"), "14:14",
     "declares no parameter 'approved'"),
    (("value: $.stepOutputs.Capture.imageId", "value: $.stepOutputs.Capture.amiId"), "33:12",
     "has no output 'amiId'"),
])
def test_a_bad_document_gets_one_error_at_its_place_and_creates_nothing(change: tuple[str, str], where: str,
                                                                        message: str) -> None:
    bad = WAIT.replace(*change)
    assert bad != WAIT
    with pytest.raises(InvalidInput) as refused:
        _create(bad)
    assert f"data:{where}: " in str(refused.value) and message in str(refused.value)
    assert resource.list_workflows()["workflowVersionList"] == []


def test_an_action_of_another_stage_is_refused() -> None:
    with pytest.raises(InvalidInput, match="DistributeImage cannot run in a BUILD workflow"):
        _create(WAIT.replace("action: CreateImage", "action: DistributeImage"))


def test_the_cli_refuses_a_bad_document_with_exit_code_and_place(kiln, tmp_path: Path) -> None:
    document = tmp_path / "wf.yaml"
    document.write_text(WAIT.replace("action: CreateImage", "action: Snapshot"))
    result = kiln("workflow", "create", "--name", "wf-gate", "--semantic-version", "1.0.0", "--type", "BUILD",
                  "--data-file", str(document))
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert "data:24:13: step 'Capture': unknown action 'Snapshot'" in result.stderr
    listed = kiln("workflow", "list", "--output", "json")
    assert json.loads(listed.stdout)["workflowVersionList"] == []


def test_the_cli_creates_lists_and_gets(kiln, tmp_path: Path) -> None:
    document = tmp_path / "wf.yaml"
    document.write_text(WAIT)
    created = kiln("workflow", "create", "--name", "gate", "--semantic-version", "2.0.0", "--type", "BUILD",
                   "--data-file", str(document), "--output", "json")
    assert created.exit_code == 0, created.stderr
    arn = json.loads(created.stdout)["workflowBuildVersionArn"]
    listed = kiln("workflow", "list")
    assert arn.rsplit("/", 1)[0] in listed.stdout
    got = kiln("workflow", "get", arn, "--output", "json")
    assert json.loads(got.stdout)["workflow"]["data"] == WAIT
    versions = kiln("workflow", "versions", arn.rsplit("/", 1)[0], "--output", "json")
    assert [s["arn"] for s in json.loads(versions.stdout)["workflowSummaryList"]] == [arn]


def test_apply_takes_the_workflow_kind(kiln, tmp_path: Path) -> None:
    import yaml

    manifest = tmp_path / "workflows.yaml"
    manifest.write_text(yaml.safe_dump({"kind": "Workflow", "name": "gate", "semanticVersion": "1.0.0",
                                        "type": "BUILD", "data": WAIT}))
    first = kiln("apply", "-f", str(manifest))
    assert first.exit_code == 0, first.stderr
    assert "workflow/build/gate/1.0.0/1" in first.stdout
    again = kiln("apply", "-f", str(manifest))
    assert again.exit_code == 0 and "unchanged" in again.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"kind": "Workflow", "name": "other", "semanticVersion": "1.0.0",
                                   "type": "BUILD", "data": WAIT.replace("WaitForAction", "WaitForever")}))
    refused = kiln("apply", "-f", str(bad))
    assert refused.exit_code != 0 and "unknown action 'WaitForever'" in refused.stderr
    assert [e["name"] for e in resource.list_workflows()["workflowVersionList"]] == ["gate"]


def test_image_parameters_are_checked_against_the_declared_ones() -> None:
    from kiln.services.workflows.configure import resolve_workflows

    arn = _create()
    chosen = resolve_workflows([{"workflowArn": arn, "parameters": [{"name": "approve", "value": ["false"]}]}])
    assert [w.type for w in chosen] == ["BUILD", "DISTRIBUTION"] and chosen[0].parameters == {"approve": False}
    with pytest.raises(InvalidInput, match="parameter approve is a boolean"):
        resolve_workflows([{"workflowArn": arn, "parameters": [{"name": "approve", "value": ["maybe"]}]}])
    with pytest.raises(InvalidInput, match="has no parameter 'color'"):
        resolve_workflows([{"workflowArn": arn, "parameters": [{"name": "color", "value": ["red"]}]}])
    with pytest.raises(InvalidInput, match="give a BUILD workflow"):
        resolve_workflows([{"workflowArn": "arn:aws:imagebuilder:local:aws:workflow/test/test-image/1.0.0/1"}])


def test_a_pipeline_records_its_workflows_and_a_used_workflow_is_not_deleted() -> None:
    from tests.pipelines.conftest import AMI, component, infrastructure, recipe

    from kiln.errors import InUse
    from kiln.services.pipelines.resource import create_image_pipeline, get_image_pipeline

    arn = _create()
    parts = {"imageRecipeArn": recipe("web", "1.0.0", AMI, [component("setup", "1.0.0")]),
             "infrastructureConfigurationArn": infrastructure()}
    wildcard = arn.rsplit("/", 2)[0] + "/1.x.x"
    with pytest.raises(InvalidInput, match="parameter approve is a boolean"):
        create_image_pipeline({"name": "gated", **parts, "workflows": [
            {"workflowArn": wildcard, "parameters": [{"name": "approve", "value": ["yes please"]}]}]})
    pipeline = create_image_pipeline({"name": "gated", **parts, "executionRole": "KilnWorkflowRole", "workflows": [
        {"workflowArn": wildcard, "parameters": [{"name": "approve", "value": ["false"]}]}]})["imagePipelineArn"]
    stored = get_image_pipeline(pipeline)["imagePipeline"]
    assert stored["workflows"] == [{"workflowArn": wildcard, "parameters": [{"name": "approve", "value": ["false"]}]}]
    assert stored["executionRole"] == "KilnWorkflowRole"
    with pytest.raises(InUse, match=pipeline):
        resource.delete_workflow(arn)


def test_workflows_take_tags() -> None:
    from kiln.services.common import tags

    arn = _create()
    tags.tag_resource({"resourceArn": arn, "tags": {"team": "release"}})
    assert tags.list_tags_for_resource(arn)["tags"] == {"team": "release"}
    assert resource.get_workflow(arn)["workflow"]["tags"] == {"team": "release"}
