"""Container recipes over the Image Builder wire (boto3), and a container image built by ``kiln serve``."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import ServeProcess, Server
from tests.api.test_api_builds import _component, _wait, parent_ami  # noqa: F401

TEMPLATE = "FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:components }}}\nENV GREETING=hi\nCMD [\"sh\"]\n"


def _recipe(client, parent: str) -> str:  # type: ignore[no-untyped-def]
    component = client.create_component(name="setup", semanticVersion="1.0.0", platform="Linux",
                                        data=_component("echo built > /built"))["componentBuildVersionArn"]
    return client.create_container_recipe(
        containerType="DOCKER", name="svc", semanticVersion="1.0.0", parentImage=parent,
        components=[{"componentArn": component}], dockerfileTemplateData=TEMPLATE,
        targetRepository={"service": "ECR", "repositoryName": "svc"},
    )["containerRecipeArn"]


def test_container_recipes_round_trip(server: Server) -> None:
    client = server.client()
    arn = _recipe(client, "ami-0123456789abcdef0")
    got = client.get_container_recipe(containerRecipeArn=arn)["containerRecipe"]
    assert got["dockerfileTemplateData"] == TEMPLATE and got["containerType"] == "DOCKER"
    summaries = client.list_container_recipes()["containerRecipeSummaryList"]
    assert [summary["arn"] for summary in summaries] == [arn]
    with pytest.raises(ClientError) as bad:
        client.create_container_recipe(
            containerType="DOCKER", name="bad", semanticVersion="1.0.0", parentImage="ami-0123456789abcdef0",
            components=[{"componentArn": got["components"][0]["componentArn"]}],
            dockerfileTemplateData="FROM alpine\n{{{ imagebuilder:components }}}\n",
            targetRepository={"service": "ECR", "repositoryName": "bad"},
        )
    assert "imagebuilder:parentImage" in str(bad.value)
    with pytest.raises(ClientError):
        client.get_container_recipe_policy(containerRecipeArn=arn)
    assert client.delete_container_recipe(containerRecipeArn=arn)["containerRecipeArn"] == arn
    assert client.list_container_recipes()["containerRecipeSummaryList"] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")
def test_create_image_with_a_container_recipe_is_built_by_the_server(
        serve_process: ServeProcess, parent_ami: str) -> None:  # noqa: F811
    client = serve_process.client()
    recipe = _recipe(client, parent_ami)
    infra = client.create_infrastructure_configuration(name="svc-infra", instanceProfileName="builder",
                                                       subnetId="none")["infrastructureConfigurationArn"]
    arn = client.create_image(containerRecipeArn=recipe, infrastructureConfigurationArn=infra)["imageBuildVersionArn"]
    image, _ = _wait(client, arn)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    assert image["type"] == "DOCKER" and image["containerRecipe"]["arn"] == recipe
    [container] = image["outputResources"]["containers"]
    inspected = subprocess.run(["skopeo", "inspect", "--config", container["imageUris"][0]], capture_output=True,
                               text=True, timeout=120)
    assert inspected.returncode == 0, inspected.stderr
    config = json.loads(inspected.stdout)["config"]
    assert "GREETING=hi" in config["Env"] and config["Cmd"] == ["sh"]
