"""Pipeline CRUD with Image Builder's shapes, references, tags and ``kind: ImagePipeline``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.pipelines.conftest import AMI, SELF, component, infrastructure, pipeline, recipe

from kiln.errors import AlreadyExists, InUse, InvalidInput, NotFound
from kiln.services.apply import apply_text
from kiln.services.common.tags import list_tags_for_resource, tag_resource
from kiln.services.configurations.distribution import (
    create_distribution_configuration,
    delete_distribution_configuration,
)
from kiln.services.configurations.infrastructure import delete_infrastructure_configuration
from kiln.services.pipelines.resource import (
    create_image_pipeline,
    delete_image_pipeline,
    get_image_pipeline,
    list_image_pipelines,
    update_image_pipeline,
)
from kiln.services.recipes.resource import delete_image_recipe


@pytest.fixture
def parts() -> dict[str, str]:
    component("app", "1.0.0")
    return {
        "recipe": recipe("web", "1.0.0", AMI, ["component/app/1.0.0"]),
        "infra": infrastructure(),
        "dist": create_distribution_configuration(
            {"name": "dist", "distributions": [{"region": "local"}]}
        )["distributionConfigurationArn"],
    }


def test_create_get_with_defaults(parts: dict[str, str]) -> None:
    arn = pipeline(
        "Nightly Web", parts["recipe"], parts["infra"],
        distributionConfigurationArn=parts["dist"],
        description="rebuild nightly",
        tags={"team": "web"},
        schedule={"scheduleExpression": "cron(0 3 * * ? *)", "timezone": "Europe/Paris"},
        workflows=[{"workflowArn": "arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0",
                    "onFailure": "ABORT"}],
        executionRole="ImageBuilderRole",
        loggingConfiguration={"pipelineLogGroupName": "/kiln/pipelines"},
        imageScanningConfiguration={"imageScanningEnabled": False},
    )
    assert arn == f"{SELF}:image-pipeline/nightly-web"
    got = get_image_pipeline(arn)["imagePipeline"]
    assert got["name"] == "Nightly Web"
    assert got["status"] == "ENABLED"
    assert got["platform"] == "Linux"
    assert got["imageTestsConfiguration"] == {"imageTestsEnabled": True, "timeoutMinutes": 720}
    assert got["enhancedImageMetadataEnabled"] is True
    assert got["schedule"]["pipelineExecutionStartCondition"] == "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE"
    assert got["workflows"][0]["onFailure"] == "ABORT"
    assert got["executionRole"] == "ImageBuilderRole"
    assert got["loggingConfiguration"] == {"pipelineLogGroupName": "/kiln/pipelines"}
    assert got["tags"] == {"team": "web"}
    assert got["consecutiveFailures"] == 0
    assert got["kilnPipelineVersion"] == 1
    # 03:00 in Paris is 02:00 UTC in winter.
    next_run = datetime.strptime(got["dateNextRun"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert (next_run.hour, next_run.minute) == (2, 0)
    assert next_run > datetime.now(UTC)


def test_invalid_bodies_name_the_field(parts: dict[str, str]) -> None:
    base = {"name": "bad", "imageRecipeArn": parts["recipe"], "infrastructureConfigurationArn": parts["infra"]}
    cases = [
        ({"schedule": {"scheduleExpression": "every day"}}, "schedule.scheduleExpression"),
        ({"schedule": {"scheduleExpression": "cron(0 3 * * ? *)", "timezone": "Mars/Olympus"}}, "schedule.timezone"),
        ({"schedule": {"autoDisablePolicy": {"failureCount": 11}}}, "schedule.autoDisablePolicy.failureCount"),
        ({"imageTestsConfiguration": {"timeoutMinutes": 10}}, "imageTestsConfiguration.timeoutMinutes"),
        ({"status": "PAUSED"}, "status"),
        ({"color": "blue"}, "color"),
    ]
    for extra, location in cases:
        with pytest.raises(InvalidInput) as caught:
            create_image_pipeline({**base, **extra})
        assert caught.value.location == location, extra
    with pytest.raises(InvalidInput):
        create_image_pipeline({**base, "containerRecipeArn": f"{SELF}:container-recipe/c/1.0.0"})
    with pytest.raises(InvalidInput):
        create_image_pipeline({"name": "bad", "infrastructureConfigurationArn": parts["infra"]})
    with pytest.raises(NotFound):
        create_image_pipeline({**base, "imageRecipeArn": f"{SELF}:image-recipe/missing/1.0.0"})
    with pytest.raises(NotFound):
        create_image_pipeline({**base, "infrastructureConfigurationArn": "infrastructure-configuration/missing"})
    assert list_image_pipelines()["imagePipelineList"] == []


def test_update_replaces_configuration_and_counts_versions(parts: dict[str, str]) -> None:
    arn = pipeline("nightly", parts["recipe"], parts["infra"], description="one", imageTags={"a": "b"},
                   tags={"team": "web"})
    with pytest.raises(AlreadyExists):
        pipeline("nightly", parts["recipe"], parts["infra"])
    update = {"imagePipelineArn": arn, "imageRecipeArn": parts["recipe"],
              "infrastructureConfigurationArn": parts["infra"], "description": "two", "status": "DISABLED"}
    update_image_pipeline(update)
    got = get_image_pipeline(arn)["imagePipeline"]
    assert (got["description"], got["status"], got["kilnPipelineVersion"]) == ("two", "DISABLED", 2)
    assert "imageTags" not in got  # PUT semantics: left out means gone
    assert got["tags"] == {"team": "web"}  # tags are not part of an update
    assert "dateUpdated" in got and "dateNextRun" not in got
    # The same update again changes nothing; leaving status out keeps it.
    update_image_pipeline({k: v for k, v in update.items() if k != "status"})
    got = get_image_pipeline(arn)["imagePipeline"]
    assert (got["status"], got["kilnPipelineVersion"]) == ("DISABLED", 2)
    with pytest.raises(NotFound):
        update_image_pipeline({**update, "imagePipelineArn": f"{SELF}:image-pipeline/nope"})


def test_list_filters(parts: dict[str, str]) -> None:
    pipeline("alpha", parts["recipe"], parts["infra"])
    pipeline("bravo", parts["recipe"], parts["infra"], status="DISABLED", distributionConfigurationArn=parts["dist"])
    names = lambda filters: [p["name"] for p in list_image_pipelines(filters=filters)["imagePipelineList"]]  # noqa: E731
    assert names(None) == ["alpha", "bravo"]
    assert names([{"name": "status", "values": ["DISABLED"]}]) == ["bravo"]
    assert names([{"name": "distributionConfigurationArn", "values": [parts["dist"]]}]) == ["bravo"]
    with pytest.raises(InvalidInput):
        names([{"name": "color", "values": ["x"]}])
    first = list_image_pipelines(max_results=1)
    assert [p["name"] for p in first["imagePipelineList"]] == ["alpha"]
    second = list_image_pipelines(max_results=1, next_token=first["nextToken"])
    assert [p["name"] for p in second["imagePipelineList"]] == ["bravo"] and "nextToken" not in second
    with pytest.raises(InvalidInput) as caught:
        list_image_pipelines(next_token="garbage")
    assert caught.value.code == "InvalidPaginationTokenException"


def test_deleting_what_a_pipeline_uses_is_refused(parts: dict[str, str]) -> None:
    arn = pipeline("nightly", f"{SELF}:image-recipe/web/1.x.x", parts["infra"],
                   distributionConfigurationArn=parts["dist"])
    for delete, target in ((delete_infrastructure_configuration, parts["infra"]),
                           (delete_distribution_configuration, parts["dist"]),
                           (delete_image_recipe, parts["recipe"])):
        with pytest.raises(InUse) as caught:
            delete(target)
        assert arn in caught.value.message
    # Another version matching the wildcard keeps the pipeline working: 1.0.0 may go then.
    recipe("web", "1.1.0", AMI, ["component/app/1.0.0"])
    delete_image_recipe(parts["recipe"])
    assert delete_image_pipeline(arn)["imagePipelineArn"] == arn
    delete_infrastructure_configuration(parts["infra"])
    with pytest.raises(NotFound):
        get_image_pipeline(arn)


def test_tags(parts: dict[str, str]) -> None:
    arn = pipeline("nightly", parts["recipe"], parts["infra"], tags={"team": "web"})
    tag_resource({"resourceArn": arn, "tags": {"env": "prod"}})
    assert list_tags_for_resource(arn)["tags"] == {"team": "web", "env": "prod"}
    assert get_image_pipeline(arn)["imagePipeline"]["tags"] == {"team": "web", "env": "prod"}


def test_apply_kind_image_pipeline(parts: dict[str, str]) -> None:
    text = f"""
kind: ImagePipeline
name: applied
imageRecipeArn: image-recipe/app-recipe/1.0.0
infrastructureConfigurationArn: {parts["infra"]}
schedule:
  scheduleExpression: cron(0 4 ? * MON *)
  autoDisablePolicy:
    failureCount: 3
---
kind: ImageRecipe
name: app-recipe
semanticVersion: 1.0.0
parentImage: {AMI}
components:
  - componentArn: component/app/1.0.0
"""
    first = apply_text(text)
    assert [(o.kind, o.status) for o in first.outcomes] == [("ImageRecipe", "created"), ("ImagePipeline", "created")]
    again = apply_text(text)
    assert [o.status for o in again.outcomes] == ["unchanged", "unchanged"]
    changed = apply_text(text.replace("failureCount: 3", "failureCount: 5"))
    assert [o.status for o in changed.outcomes] == ["unchanged", "updated"]
    got = get_image_pipeline(f"{SELF}:image-pipeline/applied")["imagePipeline"]
    assert got["schedule"]["autoDisablePolicy"] == {"failureCount": 5}
    assert got["kilnPipelineVersion"] == 2
    with pytest.raises(NotFound):
        apply_text(text.replace("image-recipe/app-recipe/1.0.0", "image-recipe/other/1.0.0"))
