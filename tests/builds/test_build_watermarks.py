"""A recipe's ``amiWatermarks`` go on the build's AMI before any copy is made, so the distributed AMIs
and a build reused from the cache carry them; bad names are refused when the recipe is created."""

from __future__ import annotations

import os

import pytest

from kiln.errors import InvalidInput
from kiln.services.builds.workflow import create_and_build
from kiln.services.ec2 import images as ec2_images

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")


def _keys(ami: str) -> list[str]:
    return [mark["WatermarkKey"] for mark in ec2_images.describe_image(ami).get("ImageWatermarks", [])]


def test_the_recipes_watermarks_mark_the_output_and_its_copies(make_recipe) -> None:  # type: ignore[no-untyped-def]
    arns = make_recipe("echo marked > /etc/marked", recipe_fields={"amiWatermarks": ["golden", "cis level 1"]})
    built = []
    for _ in range(2):  # the second build reuses the first from the cache
        built.append(create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"],
                                      distribution_arn=arns["distribution"], tests_enabled=False))
    assert built[1]["kilnCachedFrom"] == built[0]["arn"]
    for image in built:
        ami = image["outputResources"]["amis"][0]["image"]
        assert _keys(ami) == ["123456789012:cis level 1", "123456789012:golden"]


def test_bad_watermark_names_are_refused_when_the_recipe_is_created(make_recipe) -> None:  # type: ignore[no-untyped-def]
    from kiln.services.recipes.resource import list_image_recipes

    for marks, where in ((["ok-name", "ok-name"], "amiWatermarks[1]"), (["semi;colon"], "amiWatermarks[0]"),
                         ([f"mark-{i}" for i in range(6)], "amiWatermarks")):
        with pytest.raises(InvalidInput) as refused:
            make_recipe("true", name="bad", recipe_fields={"amiWatermarks": marks})
        assert str(refused.value.location).endswith(where), refused.value
    assert [r["name"] for r in list_image_recipes()["imageRecipeSummaryList"] if r["name"] == "bad"] == []
