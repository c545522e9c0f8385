"""Recipes, components, infrastructure and distribution configurations over the API are the caller's:
another account's full ARN is answered ResourceNotFoundException naming the ARN only, nothing changes;
Amazon-managed components stay readable by all."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

DOCUMENT = ("name: comp\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: S\n"
            "        action: ExecuteBash\n        inputs:\n          commands: [echo hi]\n")


def _refused(call, **kwargs) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    return refused.value.response["Error"]


def test_another_accounts_resources_are_not_found(server) -> None:  # type: ignore[no-untyped-def]
    from kiln.services.accounts.accounts import create_access_key, create_account

    peer = create_account("peer")["Id"]
    theirs = server.client(key=create_access_key(peer))
    component = theirs.create_component(name="comp", semanticVersion="1.0.0", platform="Linux", data=DOCUMENT,
                                        clientToken="c-1")["componentBuildVersionArn"]
    recipe = theirs.create_image_recipe(name="recipe", semanticVersion="1.0.0", parentImage="ami-0123456789abcdef0",
                                        components=[{"componentArn": component}],
                                        clientToken="r-1")["imageRecipeArn"]
    infra = theirs.create_infrastructure_configuration(
        name="infra", instanceProfileName="kiln", clientToken="i-1")["infrastructureConfigurationArn"]
    dist = theirs.create_distribution_configuration(
        name="dist", distributions=[{"region": "local"}], clientToken="d-1")["distributionConfigurationArn"]
    assert all(f":{peer}:" in arn for arn in (component, recipe, infra, dist))

    mine = server.client()
    calls = [
        (mine.get_component, {"componentBuildVersionArn": component}, component),
        (mine.delete_component, {"componentBuildVersionArn": component}, component),
        (mine.get_image_recipe, {"imageRecipeArn": recipe}, recipe),
        (mine.delete_image_recipe, {"imageRecipeArn": recipe}, recipe),
        (mine.get_infrastructure_configuration, {"infrastructureConfigurationArn": infra}, infra),
        (mine.delete_infrastructure_configuration, {"infrastructureConfigurationArn": infra}, infra),
        (mine.update_infrastructure_configuration,
         {"infrastructureConfigurationArn": infra, "instanceProfileName": "taken", "clientToken": "u-1"}, infra),
        (mine.get_distribution_configuration, {"distributionConfigurationArn": dist}, dist),
        (mine.delete_distribution_configuration, {"distributionConfigurationArn": dist}, dist),
        (mine.update_distribution_configuration,
         {"distributionConfigurationArn": dist, "distributions": [{"region": "local", "amiDistributionConfiguration":
                                                                   {"name": "taken-{{ imagebuilder:buildDate }}"}}],
          "clientToken": "u-2"}, dist),
    ]
    calls += [
        (mine.tag_resource, {"resourceArn": infra, "tags": {"owner": "me"}}, infra),
        (mine.untag_resource, {"resourceArn": recipe, "tagKeys": ["team"]}, recipe),
        (mine.list_tags_for_resource, {"resourceArn": dist}, dist),
    ]
    for call, kwargs, arn in calls:
        error = _refused(call, **kwargs)
        assert error["Code"] == "ResourceNotFoundException", (call, error)
        assert arn in error["Message"] and "peer" not in error["Message"]
    assert mine.list_component_build_versions(
        componentVersionArn=component.rsplit("/", 1)[0])["componentSummaryList"] == []

    # Nothing changed: the owner still sees each as it made it.
    assert theirs.get_component(componentBuildVersionArn=component)["component"]["arn"] == component
    assert theirs.get_image_recipe(imageRecipeArn=recipe)["imageRecipe"]["arn"] == recipe
    got_infra = theirs.get_infrastructure_configuration(infrastructureConfigurationArn=infra)
    assert got_infra["infrastructureConfiguration"]["instanceProfileName"] == "kiln"
    got_dist = theirs.get_distribution_configuration(distributionConfigurationArn=dist)
    assert got_dist["distributionConfiguration"]["distributions"] == [{"region": "local"}]
    assert theirs.list_tags_for_resource(resourceArn=infra)["tags"] == {}  # the refused TagResource left none
    assert [b["arn"] for b in theirs.list_component_build_versions(
        componentVersionArn=component.rsplit("/", 1)[0])["componentSummaryList"]] == [component]


def test_managed_components_are_readable_by_every_account(server) -> None:  # type: ignore[no-untyped-def]
    from kiln.services.accounts.accounts import create_access_key, create_account

    peer = create_account("peer")["Id"]
    theirs = server.client(key=create_access_key(peer))
    managed = theirs.list_components(owner="Amazon")["componentVersionList"][0]["arn"]
    assert theirs.get_component(componentBuildVersionArn=managed + "/1")["component"]["owner"] != peer
    assert theirs.list_component_build_versions(componentVersionArn=managed)["componentSummaryList"]
    assert theirs.list_tags_for_resource(resourceArn=managed + "/1")["tags"] == {}
    error = _refused(theirs.tag_resource, resourceArn=managed + "/1", tags={"mine": "yes"})
    assert error["Code"] == "ResourceNotFoundException"  # readable by all, changed by none
