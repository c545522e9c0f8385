"""Image Builder resources on PostgreSQL: ``kiln apply``, immutable versions, pipelines, lifecycle policies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kiln.errors import AlreadyExists

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SELF = "arn:aws:imagebuilder:local:123456789012"
DOC = """\
name: {name}
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Hello
        action: ExecuteBash
        inputs:
          commands:
            - echo {echo}
"""


def component(name: str, version: str = "1.0.0", echo: str = "hello") -> str:
    from kiln.services.components.resource import create_component

    body = {"name": name, "semanticVersion": version, "platform": "Linux", "data": DOC.format(name=name, echo=echo)}
    return create_component(body)["componentBuildVersionArn"]


def recipe(name: str, components: list[str], version: str = "1.0.0") -> str:
    from kiln.services.recipes.resource import create_image_recipe

    body = {"name": name, "semanticVersion": version, "parentImage": "debian:bookworm",
            "components": [{"componentArn": arn} for arn in components]}
    return create_image_recipe(body)["imageRecipeArn"]


def test_apply_demo_twice_creates_then_changes_nothing(kiln, kiln_on_postgres: str) -> None:
    from kiln.services.demo import prepare_demo_world

    prepare_demo_world()  # the regions and the account the demo's distribution names
    first = kiln("apply", "-f", str(EXAMPLES / "demo.yaml"))
    assert first.exit_code == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    assert len(lines) == 5
    assert all(line.endswith(" created") for line in lines)
    assert f"{SELF}:image-recipe/demo-nginx/1.0.0 created" in lines
    again = kiln("apply", "-f", str(EXAMPLES / "demo.yaml"), "--output", "json")
    assert again.exit_code == 0, again.stderr
    data = json.loads(again.stdout)
    assert {entry["status"] for entry in data["resources"]} == {"unchanged"}

    from kiln.services.recipes.resource import list_image_recipes

    names = [summary["name"] for summary in list_image_recipes()["imageRecipeSummaryList"]]
    assert names == ["demo-nginx"]


def test_component_versions_are_immutable(kiln_on_postgres: str) -> None:
    from kiln.services.components.resource import list_components

    arn = component("app")
    assert arn == f"{SELF}:component/app/1.0.0/1"
    assert component("app") == arn  # same content again: a no-op
    with pytest.raises(AlreadyExists) as caught:
        component("app", echo="changed")
    assert "immutable" in (caught.value.hint or "")
    assert component("app", "1.0.1") == f"{SELF}:component/app/1.0.1/1"
    assert [c["version"] for c in list_components()["componentVersionList"]] == ["1.0.0", "1.0.1"]
    assert [c["version"] for c in list_components(by_name=True)["componentVersionList"]] == ["1.0.1"]


def test_recipe_versions_are_immutable(kiln_on_postgres: str) -> None:
    app = component("app")
    other = component("other")
    arn = recipe("web", [app])
    assert arn == f"{SELF}:image-recipe/web/1.0.0"
    assert recipe("web", [app]) == arn
    with pytest.raises(AlreadyExists) as caught:
        recipe("web", [app, other])
    assert "immutable" in (caught.value.hint or "")


def test_pipeline_create_and_get(kiln_on_postgres: str) -> None:
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.pipelines.resource import create_image_pipeline, get_image_pipeline, list_image_pipelines

    recipe_arn = recipe("web", [component("app")])
    infra = create_infrastructure_configuration({"name": "infra"})["infrastructureConfigurationArn"]
    arn = create_image_pipeline({
        "name": "Nightly Web", "imageRecipeArn": recipe_arn, "infrastructureConfigurationArn": infra,
        "tags": {"team": "web"},
        "schedule": {"scheduleExpression": "cron(0 3 * * ? *)", "timezone": "Europe/Paris"},
    })["imagePipelineArn"]
    assert arn == f"{SELF}:image-pipeline/nightly-web"
    got = get_image_pipeline(arn)["imagePipeline"]
    assert got["imageRecipeArn"] == recipe_arn
    assert got["schedule"]["scheduleExpression"] == "cron(0 3 * * ? *)"
    assert got["tags"] == {"team": "web"}
    assert [p["arn"] for p in list_image_pipelines()["imagePipelineList"]] == [arn]
    with pytest.raises(AlreadyExists):
        create_image_pipeline({"name": "Nightly Web", "imageRecipeArn": recipe_arn,
                               "infrastructureConfigurationArn": infra, "description": "different"})


def test_lifecycle_policy_create_list_and_preview_over_an_empty_store(kiln_on_postgres: str) -> None:
    from kiln.services.lifecycle.policies import create_policy, list_policies
    from kiln.services.lifecycle.runner import preview

    arn = create_policy({
        "name": "retire-old", "executionRole": "KilnLifecycleRole", "resourceType": "AMI_IMAGE",
        "policyDetails": [{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 1}}],
        "resourceSelection": {"recipes": [{"name": "web", "semanticVersion": "x.x.x"}]},
        "tags": {"team": "platform"},
    })
    assert arn == f"{SELF}:lifecycle-policy/retire-old"
    assert [p.arn for p in list_policies()] == [arn]
    assert list_policies(status="DISABLED") == []
    policy, plan = preview(arn, as_of=datetime(2026, 1, 1, tzinfo=UTC))
    assert policy.arn == arn
    assert plan.images == []
    assert list(plan.decisions()) == []
