"""Lifecycle policies (get, delete, list executions), tags and GetImage act in the caller's region also
when the request names the resource by a name or short form rather than a full ARN (which the wire checks
first): the services take the region, so a name means the caller's resource in the region the request was
signed for, and one of another region is ResourceNotFoundException with nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server

from kiln.errors import NotFound
from kiln.home import DEFAULT_ACCOUNT

FAR = "eu-west-1"
POLICY = {"executionRole": "arn:aws:iam::123456789012:role/lifecycle", "resourceType": "AMI_IMAGE",
          "policyDetails": [{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 2}}],
          "resourceSelection": {"recipes": [{"name": "web", "semanticVersion": "1.0.0"}]}}


def _refused(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    return refused.value.response["Error"]["Code"]


@pytest.fixture
def far(server: Server) -> None:
    from kiln.services.accounts.regions import create_region

    create_region(FAR)


def test_a_policy_named_by_its_name_is_the_one_of_the_callers_region(server: Server, far: None) -> None:
    home, away = server.client(), server.client(region=FAR)
    local = home.create_lifecycle_policy(name="retire", **POLICY)["lifecyclePolicyArn"]
    assert ":local:" in local

    for call, member in ((away.get_lifecycle_policy, "lifecyclePolicyArn"),
                         (away.list_lifecycle_executions, "resourceArn"),
                         (away.delete_lifecycle_policy, "lifecyclePolicyArn")):
        assert _refused(call, **{member: "retire"}) == "ResourceNotFoundException"
    assert home.get_lifecycle_policy(lifecyclePolicyArn="retire")["lifecyclePolicy"]["arn"] == local  # not deleted
    assert home.list_lifecycle_executions(resourceArn="retire")["lifecycleExecutions"] == []

    there = away.create_lifecycle_policy(name="retire", **POLICY)["lifecyclePolicyArn"]
    assert f":{FAR}:" in there
    assert away.get_lifecycle_policy(lifecyclePolicyArn="retire")["lifecyclePolicy"]["arn"] == there
    assert away.delete_lifecycle_policy(lifecyclePolicyArn="retire")["lifecyclePolicyArn"] == there
    assert home.get_lifecycle_policy(lifecyclePolicyArn="retire")["lifecyclePolicy"]["arn"] == local


def _recipe(client: Any) -> str:
    return client.create_image_recipe(name="web", semanticVersion="1.0.0", parentImage="ami-0123456789abcdef0",
                                      components=[{"componentArn": "arn:aws:imagebuilder:local:aws:component/"
                                                   "update-linux/x.x.x"}])["imageRecipeArn"]


def test_tags_by_short_form_are_of_the_callers_region(server: Server, far: None) -> None:
    home, away = server.client(), server.client(region=FAR)
    recipe = _recipe(home)
    short = "image-recipe/web/1.0.0"
    assert _refused(away.tag_resource, resourceArn=short, tags={"team": "far"}) == "ResourceNotFoundException"
    assert _refused(away.untag_resource, resourceArn=short, tagKeys=["team"]) == "ResourceNotFoundException"
    assert _refused(away.list_tags_for_resource, resourceArn=short) == "ResourceNotFoundException"
    assert home.list_tags_for_resource(resourceArn=recipe)["tags"] == {}  # nothing changed

    home.tag_resource(resourceArn=short, tags={"team": "home"})
    assert home.list_tags_for_resource(resourceArn=short)["tags"] == {"team": "home"}
    home.untag_resource(resourceArn=short, tagKeys=["team"])
    assert home.list_tags_for_resource(resourceArn=recipe)["tags"] == {}


def test_the_services_refuse_another_regions_resources(server: Server, far: None) -> None:
    """What the API calls with the caller's region, checked by the services themselves (also for a full
    ARN, which the wire refuses before)."""
    from kiln.services import image_versions
    from kiln.services.builds import records
    from kiln.services.common import tags
    from kiln.services.lifecycle import policies

    home = server.client()
    arn = home.create_lifecycle_policy(name="retire", **POLICY)["lifecyclePolicyArn"]
    recipe = _recipe(home)
    image = records.create_image(name="web", version="1.0.0",
                                 recipe_arn=f"arn:aws:imagebuilder:local:{DEFAULT_ACCOUNT}:image-recipe/web/1.0.0",
                                 infrastructure_arn=f"arn:aws:imagebuilder:local:{DEFAULT_ACCOUNT}:"
                                                    "infrastructure-configuration/infra")
    me = DEFAULT_ACCOUNT
    for call in (lambda: policies.get_policy(arn, caller=me, region=FAR),
                 lambda: policies.delete_policy(arn, caller=me, region=FAR),
                 lambda: policies.list_executions(arn, caller=me, region=FAR),
                 lambda: image_versions.get_image(image, caller=me, region=FAR),
                 lambda: tags.list_tags_for_resource(recipe, caller=me, region=FAR),
                 lambda: tags.tag_resource({"resourceArn": recipe, "tags": {"k": "v"}}, caller=me, region=FAR)):
        with pytest.raises(NotFound):
            call()
    assert policies.get_policy(arn, caller=me, region="local").arn == arn
    assert image_versions.get_image(image, caller=me, region="local")["image"]["arn"] == image
    assert tags.list_tags_for_resource(recipe, caller=me, region="local")["tags"] == {}
