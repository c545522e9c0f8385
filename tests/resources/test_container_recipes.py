"""Container recipes as resources: create/get/list/delete, the Dockerfile template's checks, apply, CLI;
and the image recipe's check of component parameters against allowedValues."""

from __future__ import annotations

import json

import pytest
import yaml

from kiln.errors import InvalidInput
from kiln.services.components.resource import create_component
from kiln.services.container_recipes.resource import (
    create_container_recipe,
    delete_container_recipe,
    get_container_recipe,
    list_container_recipes,
)

BUILD = """\
name: setup
schemaVersion: 1.0
parameters:
  - Mode:
      type: string
      default: fast
      allowedValues: [fast, thorough]
phases:
  - name: build
    steps:
      - name: Say
        action: ExecuteBash
        inputs:
          commands: [echo hi]
"""
TEMPLATE = "FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:environments }}}\n{{{ imagebuilder:components }}}\n"


def _component() -> str:
    return create_component({"name": "setup", "semanticVersion": "1.0.0", "platform": "Linux", "data": BUILD})[
        "componentBuildVersionArn"]


def _body(**extra: object) -> dict:
    return {"containerType": "DOCKER", "name": "web", "semanticVersion": "1.0.0",
            "parentImage": "ami-0123456789abcdef0", "components": [{"componentArn": "component/setup/x.x.x"}],
            "dockerfileTemplateData": TEMPLATE,
            "targetRepository": {"service": "ECR", "repositoryName": "web"}, **extra}


def _count() -> int:
    return len(list_container_recipes()["containerRecipeSummaryList"])


def test_create_get_list_delete() -> None:
    _component()
    body = _body(platformOverride="Linux", imageOsVersionOverride="Debian 12",
                 instanceConfiguration={"image": "ami-0123456789abcdef0"})
    created = create_container_recipe(body)
    arn = created["containerRecipeArn"]
    assert arn == "arn:aws:imagebuilder:local:123456789012:container-recipe/web/1.0.0"
    recipe = get_container_recipe(arn)["containerRecipe"]
    assert recipe["dockerfileTemplateData"] == TEMPLATE and recipe["containerType"] == "DOCKER"
    assert recipe["targetRepository"] == {"service": "ECR", "repositoryName": "web"}
    assert recipe["components"][0]["componentArn"].endswith(":component/setup/x.x.x")
    assert create_container_recipe(body)["containerRecipeArn"] == arn  # same content: unchanged
    [summary] = list_container_recipes(filters=[{"name": "containerType", "values": ["DOCKER"]}])[
        "containerRecipeSummaryList"]
    assert summary["arn"] == arn and summary["parentImage"] == "ami-0123456789abcdef0"
    delete_container_recipe(arn)
    assert _count() == 0


@pytest.mark.parametrize(("template", "message", "where"), [
    ("FROM debian:bookworm\n{{{ imagebuilder:components }}}\n", "no FROM {{{ imagebuilder:parentImage }}}",
     "dockerfileTemplateData"),
    ("RUN true\n{{{ imagebuilder:components }}}\n", "no FROM {{{ imagebuilder:parentImage }}}",
     "dockerfileTemplateData"),
    ("FROM {{{ imagebuilder:parentImage }}}\nRUN true\n", "no {{{ imagebuilder:components }}}",
     "dockerfileTemplateData"),
    ("FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:components }}}\nHEALTHCHECK CMD true\n",
     "unsupported instruction HEALTHCHECK", "dockerfileTemplateData:3"),
    ("FROM {{{ imagebuilder:parentImage }}}\n\nCOPY app /srv\n{{{ imagebuilder:components }}}\n",
     "COPY is not supported", "dockerfileTemplateData:3"),
    ("FROM {{{ imagebuilder:parentImage }}}\nUSER app\nRUN id\n{{{ imagebuilder:components }}}\n",
     "RUN after USER app", "dockerfileTemplateData:3"),
    ("FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:components }}}\nCMD [\"broken\n",
     "exec form is not a JSON list", "dockerfileTemplateData:3"),
    ("FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:component }}}\n",
     "unknown placeholder", "dockerfileTemplateData:2"),
])
def test_a_bad_template_is_one_clear_error_and_creates_nothing(template: str, message: str, where: str) -> None:
    _component()
    with pytest.raises(InvalidInput) as refused:
        create_container_recipe(_body(dockerfileTemplateData=template))
    assert message in refused.value.message and refused.value.location == where
    assert _count() == 0


def test_an_unknown_component_or_bad_repository_creates_nothing() -> None:
    with pytest.raises(InvalidInput) as unknown:
        create_container_recipe(_body())
    assert "component" in unknown.value.message and unknown.value.location == "components[0].componentArn"
    _component()
    with pytest.raises(InvalidInput) as repository:
        create_container_recipe(_body(targetRepository={"service": "ECR", "repositoryName": "Web App"}))
    assert repository.value.location == "targetRepository.repositoryName"
    with pytest.raises(InvalidInput) as both:
        create_container_recipe(_body(dockerfileTemplateUri="s3://bucket/Dockerfile"))
    assert "exactly one of" in both.value.message
    assert _count() == 0


def test_a_template_from_a_file_uri(tmp_path) -> None:
    _component()
    path = tmp_path / "Dockerfile.template"
    path.write_text(TEMPLATE)
    body = _body(dockerfileTemplateUri=f"file://{path}")
    del body["dockerfileTemplateData"]
    arn = create_container_recipe(body)["containerRecipeArn"]
    assert get_container_recipe(arn)["containerRecipe"]["dockerfileTemplateData"] == TEMPLATE


@pytest.mark.parametrize("recipe_kind", ["image", "container"])
def test_recipe_parameters_must_be_allowed_values(recipe_kind: str) -> None:
    from kiln.services.recipes.resource import create_image_recipe, list_image_recipes

    _component()
    components = [{"componentArn": "component/setup/1.0.0", "parameters": [{"name": "Mode", "value": ["slow"]}]}]
    with pytest.raises(InvalidInput) as refused:
        if recipe_kind == "image":
            create_image_recipe({"name": "web", "semanticVersion": "1.0.0", "parentImage": "debian:bookworm",
                                 "components": components})
        else:
            create_container_recipe(_body(components=components))
    assert refused.value.location == "components[0].parameters[0].value"
    assert "'slow' is not an allowed value of parameter 'Mode'" in refused.value.message
    assert "setup 1.0.0" in refused.value.message and "allowed: fast, thorough" in refused.value.message
    assert not list_image_recipes()["imageRecipeSummaryList"] and _count() == 0
    components[0]["parameters"][0]["value"] = ["thorough"]
    create_container_recipe(_body(components=components))
    assert _count() == 1


def test_cli_and_apply(kiln, tmp_path) -> None:
    _component()
    body = tmp_path / "recipe.json"
    body.write_text(json.dumps(_body()))
    created = kiln("container-recipe", "create", "--cli-input-json", f"file://{body}")
    assert created.exit_code == 0, created.stderr
    arn = created.stdout.strip()
    listed = kiln("container-recipe", "list", "--output", "json")
    assert json.loads(listed.stdout)["containerRecipeSummaryList"][0]["arn"] == arn
    shown = kiln("container-recipe", "get", arn)
    assert "imagebuilder:parentImage" in shown.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"kind": "ContainerRecipe", **_body(), "name": "other",
                                   "dockerfileTemplateData": "FROM scratch\n"}))
    refused = kiln("apply", "-f", str(bad))
    assert refused.exit_code != 0 and "no FROM {{{ imagebuilder:parentImage }}}" in refused.stderr
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"kind": "ContainerRecipe", **_body(), "semanticVersion": "1.0.1"}))
    applied = kiln("apply", "-f", str(good))
    assert applied.exit_code == 0, applied.stderr
    assert applied.stdout.strip() == "arn:aws:imagebuilder:local:123456789012:container-recipe/web/1.0.1 created"
    assert kiln("container-recipe", "delete", arn).exit_code == 0
    assert _count() == 1
