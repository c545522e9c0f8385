from __future__ import annotations

import pytest

from kiln.errors import InvalidInput, NotFound
from kiln.services.apply import apply_text
from kiln.services.common.tags import list_tags_for_resource, tag_resource, untag_resource
from kiln.services.components.resource import create_component, get_component, list_component_build_versions
from kiln.services.configurations.infrastructure import (
    create_infrastructure_configuration,
    get_infrastructure_configuration,
)
from kiln.services.recipes.resource import create_image_recipe, get_image_recipe

SELF = "arn:aws:imagebuilder:local:123456789012"


def test_tags_change_on_immutable_component(simple_doc: str) -> None:
    arn = create_component(
        {
            "name": "tagged",
            "semanticVersion": "1.0.0",
            "platform": "Linux",
            "data": simple_doc,
            "tags": {"a": "1"},
        }
    )["componentBuildVersionArn"]
    tag_resource({"resourceArn": arn, "tags": {"b": "2"}})
    assert list_tags_for_resource(arn)["tags"] == {"a": "1", "b": "2"}
    untag_resource({"resourceArn": arn, "tagKeys": ["a"]})
    assert get_component(arn)["component"]["tags"] == {"b": "2"}
    with pytest.raises(InvalidInput):
        tag_resource({"resourceArn": arn, "tags": {"aws:owner": "x"}})
    with pytest.raises(NotFound):
        list_tags_for_resource(f"{SELF}:component/ghost/1.0.0/1")


def test_recipe_and_configuration_tags(simple_doc: str) -> None:
    create_component({"name": "simple", "semanticVersion": "1.0.0", "platform": "Linux", "data": simple_doc})
    recipe = create_image_recipe(
        {
            "name": "r-tags",
            "semanticVersion": "1.0.0",
            "parentImage": "debian:bookworm",
            "components": [{"componentArn": f"{SELF}:component/simple/x.x.x"}],
        }
    )["imageRecipeArn"]
    tag_resource({"resourceArn": recipe, "tags": {"team": "web"}})
    assert get_image_recipe(recipe)["imageRecipe"]["tags"] == {"team": "web"}
    infra = create_infrastructure_configuration({"name": "infra-tags"})["infrastructureConfigurationArn"]
    tag_resource({"resourceArn": infra, "tags": {"env": "dev"}})
    assert get_infrastructure_configuration(infra)["infrastructureConfiguration"]["tags"] == {"env": "dev"}


def test_apply_with_new_tags_updates_only_the_tags() -> None:
    document = (
        "kind: Component\nname: tagged\nsemanticVersion: 1.0.0\nplatform: Linux\ntags: {team: %s}\ndata: |\n"
        "  schemaVersion: 1.0\n  phases:\n    - name: build\n      steps:\n"
        "        - name: A\n          action: ExecuteBash\n          inputs: {commands: [echo a]}\n"
    )
    assert apply_text(document % "a").outcomes[0].status == "created"
    result = apply_text(document % "b")
    assert result.outcomes[0].status == "updated"
    assert get_component(result.outcomes[0].arn)["component"]["tags"] == {"team": "b"}
    assert apply_text(document % "b").outcomes[0].status == "unchanged"


def test_list_component_build_versions(simple_doc: str) -> None:
    create_component({"name": "builds", "semanticVersion": "1.0.0", "platform": "Linux", "data": simple_doc})
    listed = list_component_build_versions(f"{SELF}:component/builds/1.0.0")["componentSummaryList"]
    assert [entry["arn"] for entry in listed] == [f"{SELF}:component/builds/1.0.0/1"]
    with pytest.raises(InvalidInput):
        list_component_build_versions(f"{SELF}:component/builds/1.x.x")
