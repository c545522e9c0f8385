from __future__ import annotations

import pytest

from kiln.errors import AlreadyExists, InvalidInput, NotFound
from kiln.services.components.resource import create_component
from kiln.services.recipes.resource import (
    create_image_recipe,
    delete_image_recipe,
    get_image_recipe,
    list_image_recipes,
    resolve_parent,
)

SELF = "arn:aws:imagebuilder:local:123456789012"


def component(name: str, data: str, version: str = "1.0.0") -> str:
    body = {"name": name, "semanticVersion": version, "platform": "Linux", "data": data}
    return create_component(body)["componentBuildVersionArn"]


def recipe(components: list[dict], **extra: object) -> dict:
    body = {
        "name": "Web Server",
        "semanticVersion": "1.0.0",
        "parentImage": "debian:bookworm",
        "components": components,
        **extra,
    }
    return create_image_recipe(body)


def test_create_and_get(build_doc: str) -> None:
    component("sample", build_doc)
    created = recipe(
        [
            {"componentArn": "component/update-linux/x.x.x"},
            {
                "componentArn": f"{SELF}:component/sample/1.x.x",
                "parameters": [{"name": "Target", "value": ["/tmp/out"]}],
            },
        ],
        tags={"team": "web"},
        amiTags={"app": "web"},
        blockDeviceMappings=[{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 8, "volumeType": "gp3"}}],
    )
    assert created["imageRecipeArn"] == f"{SELF}:image-recipe/web-server/1.0.0"
    got = get_image_recipe(created["imageRecipeArn"])["imageRecipe"]
    assert got["name"] == "Web Server"
    assert got["type"] == "AMI"
    assert got["platform"] == "Linux"
    assert got["owner"] == "123456789012"
    assert got["parentImage"] == "debian:bookworm"
    # The short form is stored as the full ARN it means (here the Amazon-managed component).
    assert got["components"][0] == {
        "componentArn": "arn:aws:imagebuilder:local:aws:component/update-linux/x.x.x"
    }
    assert got["components"][1]["parameters"] == [{"name": "Target", "value": ["/tmp/out"]}]
    assert got["amiTags"] == {"app": "web"}
    assert got["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 8
    listed = list_image_recipes()["imageRecipeSummaryList"]
    assert [entry["arn"] for entry in listed] == [created["imageRecipeArn"]]


def test_unknown_parameter_is_named(build_doc: str) -> None:
    component("sample", build_doc)
    with pytest.raises(InvalidInput) as caught:
        recipe(
            [
                {
                    "componentArn": f"{SELF}:component/sample/1.0.0",
                    "parameters": [{"name": "Target", "value": ["x"]}, {"name": "Colour", "value": ["red"]}],
                }
            ]
        )
    assert caught.value.location == "components[0].parameters[1].name"
    assert "Colour" in caught.value.message
    assert "Greeting" in caught.value.message


def test_parameter_without_default_is_required(build_doc: str) -> None:
    component("sample", build_doc)
    with pytest.raises(InvalidInput) as caught:
        recipe([{"componentArn": f"{SELF}:component/sample/1.0.0"}])
    assert "Target" in caught.value.message


def test_missing_component_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        recipe([{"componentArn": f"{SELF}:component/ghost/1.x.x"}])
    assert caught.value.location == "components[0].componentArn"
    assert list_image_recipes()["imageRecipeSummaryList"] == []


def test_needs_a_build_component(test_doc: str) -> None:
    component("checks", test_doc)
    with pytest.raises(InvalidInput) as caught:
        recipe([{"componentArn": f"{SELF}:component/checks/1.0.0/1"}])
    assert "build component" in caught.value.message


def test_immutable_and_idempotent(simple_doc: str) -> None:
    component("simple", simple_doc)
    first = recipe([{"componentArn": f"{SELF}:component/simple/x.x.x"}])
    assert (
        recipe([{"componentArn": f"{SELF}:component/simple/x.x.x"}])["imageRecipeArn"]
        == first["imageRecipeArn"]
    )
    with pytest.raises(AlreadyExists) as caught:
        recipe([{"componentArn": f"{SELF}:component/simple/x.x.x"}], description="changed")
    assert "immutable" in (caught.value.hint or "")


def test_parent_image_forms(simple_doc: str) -> None:
    component("simple", simple_doc)
    parts = [{"componentArn": f"{SELF}:component/simple/x.x.x"}]
    created = recipe(parts, name="from-image", parentImage=f"{SELF}:image/base/1.x.x")
    parent = resolve_parent(get_image_recipe(created["imageRecipeArn"])["imageRecipe"]["parentImage"])
    assert parent.kind == "image"
    assert str(parent.image_arn) == f"{SELF}:image/base/1.x.x"
    bootstrap = resolve_parent("ubuntu:noble")
    assert (bootstrap.kind, bootstrap.distribution, bootstrap.suite) == ("bootstrap", "ubuntu", "noble")
    with pytest.raises(InvalidInput) as caught:
        recipe(parts, name="bad-parent", parentImage="centos:7")
    assert caught.value.location == "parentImage"


def test_delete(simple_doc: str) -> None:
    component("simple", simple_doc)
    arn = recipe([{"componentArn": f"{SELF}:component/simple/x.x.x"}])["imageRecipeArn"]
    assert delete_image_recipe(arn)["imageRecipeArn"] == arn
    with pytest.raises(NotFound):
        get_image_recipe(arn)


def test_list_filters(simple_doc: str) -> None:
    from kiln.services.components.resource import list_components

    component("alpha", simple_doc)
    component("beta", simple_doc)
    names = [
        entry["name"]
        for entry in list_components(filters=[{"name": "name", "values": ["beta"]}])["componentVersionList"]
    ]
    assert names == ["beta"]
    with pytest.raises(InvalidInput) as caught:
        list_components(filters=[{"name": "colour", "values": ["red"]}])
    assert caught.value.location == "filters[0].name"


def test_resolve_recipe_components_for_builds(build_doc: str, simple_doc: str) -> None:
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.resources import ImageRecipeRow
    from kiln.services.recipes.resource import resolve_recipe_components

    component("sample", build_doc)
    component("simple", simple_doc)
    recipe(
        [
            {"componentArn": f"{SELF}:component/simple/x.x.x"},
            {
                "componentArn": f"{SELF}:component/sample/1.0.0",
                "parameters": [{"name": "Target", "value": ["/x"]}],
            },
        ]
    )
    component("simple", simple_doc + "# newer\n", version="1.1.0")
    with session() as db:
        row = db.scalars(select(ImageRecipeRow)).one()
        resolved = resolve_recipe_components(row, db=db)
        assert [(c.name, c.version) for c, _ in resolved] == [("simple", "1.1.0"), ("sample", "1.0.0")]
        assert resolved[1][1] == {"Target": ["/x"]}
