"""``kiln apply --endpoint-url``: the file applied to a running server through boto3, told as a local
apply tells it."""

from __future__ import annotations

from pathlib import Path

import yaml
from tests.api.conftest import Server

COMPONENT = """\
name: hello
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Hello
        action: ExecuteBash
        inputs:
          commands: [echo hello]
"""
SELF = "arn:aws:imagebuilder:local:123456789012"


def _write(path: Path, description: str = "build hosts", *, image: bool = False) -> Path:
    documents: list[dict] = [
        {"kind": "ImageRecipe", "name": "web", "semanticVersion": "1.0.0", "parentImage": "ami-0123456789abcdef0",
         "components": [{"componentArn": "component/hello/1.0.0"}]},
        {"kind": "Component", "name": "hello", "semanticVersion": "1.0.0", "platform": "Linux", "data": COMPONENT},
        {"kind": "InfrastructureConfiguration", "name": "build", "description": description, "subnetId": "none",
         "instanceProfileName": "builder"},
    ]
    documents.append({"kind": "ImagePipeline", "name": "web-pipeline", "imageRecipeArn": "image-recipe/web/1.0.0",
                      "infrastructureConfigurationArn": "infrastructure-configuration/build",
                      "schedule": {"scheduleExpression": "cron(0 4 * * ? *)"}})
    if image:
        documents.append({"kind": "Image", "imageRecipeArn": "image-recipe/web/1.0.0",
                          "infrastructureConfigurationArn": "infrastructure-configuration/build"})
    path.write_text(yaml.safe_dump_all(documents))
    return path


def _env(server: Server) -> dict[str, str | None]:
    return {"AWS_ACCESS_KEY_ID": server.key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": server.key["SecretAccessKey"],
            "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None, "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


def test_apply_through_the_api_reports_as_a_local_apply(kiln, server: Server, tmp_path: Path) -> None:
    path = _write(tmp_path / "stack.yaml")
    first = kiln("apply", "-f", str(path), "--endpoint-url", server.endpoint, env=_env(server))
    assert first.exit_code == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"{SELF}:component/hello/1.0.0/1 created",
        f"{SELF}:image-recipe/web/1.0.0 created",
        f"{SELF}:infrastructure-configuration/build created",
        f"{SELF}:image-pipeline/web-pipeline created",
    ]
    again = kiln("apply", "-f", str(path), "--endpoint-url", server.endpoint, env=_env(server))
    assert again.stdout == first.stdout.replace("created", "unchanged")
    local = kiln("apply", "-f", str(path))  # the same file applied here says the same
    assert local.stdout == again.stdout
    changed = kiln("apply", "-f", str(_write(path, "new hosts")), "--endpoint-url", server.endpoint, env=_env(server))
    assert changed.stdout.splitlines()[-2:] == [f"{SELF}:infrastructure-configuration/build updated",
                                                f"{SELF}:image-pipeline/web-pipeline unchanged"]
    assert server.client().get_infrastructure_configuration(
        infrastructureConfigurationArn=f"{SELF}:infrastructure-configuration/build",
    )["infrastructureConfiguration"]["description"] == "new hosts"


def test_an_image_document_over_the_api_is_started_once(kiln, server: Server, tmp_path: Path) -> None:
    path = _write(tmp_path / "stack.yaml", image=True)
    first = kiln("apply", "-f", str(path), "--endpoint-url", server.endpoint, env=_env(server))
    assert first.exit_code == 0, first.stderr
    assert first.stdout.splitlines()[-1] == f"{SELF}:image/web/1.0.0/1 created"
    again = kiln("apply", "-f", str(path), "--endpoint-url", server.endpoint, env=_env(server))
    assert again.stdout.splitlines()[-1] == f"{SELF}:image/web/1.0.0/1 unchanged"


def test_bad_input_and_missing_credentials_are_one_error(kiln, server: Server, tmp_path: Path) -> None:
    path = _write(tmp_path / "stack.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: ImageRecipe\nname: web\nsemanticVersion: 1.0.0\n")
    refused = kiln("apply", "-f", str(bad), "--endpoint-url", server.endpoint, env=_env(server))
    assert refused.exit_code != 0 and "parentImage" in refused.stderr
    assert server.client().list_image_recipes()["imageRecipeSummaryList"] == []
    anonymous = {**_env(server), "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
    denied = kiln("apply", "-f", str(path), "--endpoint-url", server.endpoint, env=anonymous)
    assert denied.exit_code != 0 and "no AWS credentials" in denied.stderr
    assert "Traceback" not in denied.stderr


POLICY = """
kind: LifecyclePolicy
name: keep-five
description: delete all but the newest images
executionRole: arn:aws:iam::123456789012:role/lifecycle
resourceType: AMI_IMAGE
policyDetails:
  - action: {type: DELETE, includeResources: {amis: true, snapshots: true}}
    filter: {type: COUNT, value: %d}
resourceSelection:
  recipes:
    - {name: web, semanticVersion: 1.x.x}
---
kind: DistributionConfiguration
name: everywhere
distributions:
  - region: local
    amiDistributionConfiguration: {name: "web-{{ imagebuilder:buildDate }}"}
"""


def test_lifecycle_policies_and_distributions_update_in_place(kiln, server: Server, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY % 5)
    first = kiln("apply", "-f", str(path), "--endpoint-url", server.endpoint, env=_env(server))
    assert first.exit_code == 0, first.stderr
    assert [line.rsplit(" ", 1)[1] for line in first.stdout.splitlines()] == ["created", "created"]
    again = kiln("apply", "-f", str(path), "--endpoint-url", server.endpoint, env=_env(server))
    assert [line.rsplit(" ", 1)[1] for line in again.stdout.splitlines()] == ["unchanged", "unchanged"]
    path.write_text(POLICY % 3)
    changed = kiln("apply", "-f", str(path), "--endpoint-url", server.endpoint, env=_env(server))
    assert [line.rsplit(" ", 1)[1] for line in changed.stdout.splitlines()] == ["updated", "unchanged"]
    assert changed.stdout.split()[0] == f"{SELF}:lifecycle-policy/keep-five"


def test_kiln_approval_reaches_the_server_as_the_workflows_it_stands_for(kiln, server: Server,
                                                                          tmp_path: Path) -> None:
    from kiln.services.pipelines.resource import get_image_pipeline

    path = _write(tmp_path / "stack.yaml")
    documents = list(yaml.safe_load_all(path.read_text()))
    documents[-1]["kiln:approval"] = True
    path.write_text(yaml.safe_dump_all(documents))
    applied = kiln("apply", "-f", str(path), "--endpoint-url", server.endpoint, env=_env(server))
    assert applied.exit_code == 0, applied.stderr
    pipeline = get_image_pipeline(f"{SELF}:image-pipeline/web-pipeline")["imagePipeline"]
    assert [entry["workflowArn"].split(":")[-1] for entry in pipeline["workflows"]] == [
        "workflow/build/build-image/1.0.0/1", "workflow/test/test-and-approve-image/1.0.0/1",
        "workflow/distribution/distribute-image/1.0.0/1"]
