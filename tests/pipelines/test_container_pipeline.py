"""A pipeline of a container recipe: created, run, its image a container image; its recipe in use."""

from __future__ import annotations

import os

import pytest
from tests.builds.conftest import component_doc, parent_ami  # noqa: F401

from kiln.errors import InUse

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")


def test_a_container_pipeline_builds_a_container_image(parent_ami: str) -> None:  # noqa: F811
    from kiln.services.components.resource import create_component
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.container_recipes.resource import create_container_recipe, delete_container_recipe
    from kiln.services.pipelines.resource import create_image_pipeline, get_image_pipeline
    from kiln.services.pipelines.runs import start_image_pipeline_execution

    component = create_component({"name": "setup", "semanticVersion": "1.0.0", "platform": "Linux",
                                  "data": component_doc("setup", "echo ok > /ok")})["componentBuildVersionArn"]
    recipe = create_container_recipe({
        "containerType": "DOCKER", "name": "svc", "semanticVersion": "1.0.0", "parentImage": parent_ami,
        "components": [{"componentArn": component}],
        "dockerfileTemplateData": "FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:components }}}\n",
        "targetRepository": {"service": "ECR", "repositoryName": "svc"},
    })["containerRecipeArn"]
    infrastructure = create_infrastructure_configuration({"name": "svc-infra", "subnetId": "none"})
    pipeline = create_image_pipeline({
        "name": "svc-pipeline", "containerRecipeArn": "container-recipe/svc/1.0.0",
        "infrastructureConfigurationArn": infrastructure["infrastructureConfigurationArn"],
    })["imagePipelineArn"]
    shown = get_image_pipeline(pipeline)["imagePipeline"]
    assert shown["containerRecipeArn"] == recipe and "imageRecipeArn" not in shown
    assert shown["platform"] == "Linux"
    arn = start_image_pipeline_execution({"imagePipelineArn": pipeline})["imageBuildVersionArn"]
    from kiln.services.builds import records

    image = records.get_image(arn)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    assert image["type"] == "DOCKER" and image["sourcePipelineArn"] == pipeline
    assert image["outputResources"]["containers"][0]["imageUris"][0].endswith(":svc:1.0.0-1")
    with pytest.raises(InUse):
        delete_container_recipe(recipe)
