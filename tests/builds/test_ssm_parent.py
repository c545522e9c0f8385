"""A recipe's ``parentImage: ssm:<parameter>`` resolves through the parameter store at build time; the
image records the parameter version it came from, and a missing parameter fails the build by name."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.errors import KilnError
from kiln.services.builds.workflow import create_and_build
from kiln.services.parameters.parameter_store import put_parameter
from kiln.services.recipes.resource import create_image_recipe, get_image_recipe
from kiln.store import api as store

pytestmark = pytest.mark.root


def _recipe(make_recipe: Any, parent: str) -> dict[str, str]:
    arns = make_recipe("echo built > /built")
    component = get_image_recipe(arns["recipe"])["imageRecipe"]["components"][0]["componentArn"]
    recipe = create_image_recipe({
        "name": "from-ssm", "semanticVersion": "1.0.0", "parentImage": parent,
        "components": [{"componentArn": component}],
    })
    return {**arns, "recipe": recipe["imageRecipeArn"]}


def test_an_ssm_parent_builds_from_the_ami_the_parameter_holds(make_recipe: Any, parent_ami: str) -> None:
    put_parameter("/golden/base", parent_ami, data_type="aws:ec2:image")
    arns = _recipe(make_recipe, "ssm:/golden/base")
    image = create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"])
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    ami = image["outputResources"]["amis"][0]["image"]
    tags = store.get_image(ami).tags
    assert tags["kiln:ParentImage"] == parent_ami
    assert tags["kiln:ParentImageParameter"] == "ssm:/golden/base:1"


def test_a_missing_parameter_fails_the_build_naming_it(make_recipe: Any) -> None:
    arns = _recipe(make_recipe, "ssm:/golden/nowhere")
    with pytest.raises(KilnError, match="/golden/nowhere"):
        create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"])
    assert [image.name for image in store.describe_images()] == ["busybox-parent"]  # nothing made
