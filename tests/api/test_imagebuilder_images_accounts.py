"""Image Builder images over the API are the caller's: another account's build is not found (the code
Image Builder answers, naming the ARN only), its builds absent from the caller's listings."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from kiln.home import DEFAULT_ACCOUNT


def test_another_accounts_image_is_not_found(server) -> None:  # type: ignore[no-untyped-def]
    from kiln.services.accounts.accounts import create_access_key, create_account
    from kiln.services.builds import records

    peer = create_account("peer")["Id"]
    arn = records.create_image(
        name="web", version="1.0.0", account=peer,
        recipe_arn=f"arn:aws:imagebuilder:local:{peer}:image-recipe/web/1.0.0",
        infrastructure_arn=f"arn:aws:imagebuilder:local:{peer}:infrastructure-configuration/build",
    )
    assert arn == f"arn:aws:imagebuilder:local:{peer}:image/web/1.0.0/1"
    records.finish_available(arn, [])
    theirs = server.client(key=create_access_key(peer))
    assert theirs.get_image(imageBuildVersionArn=arn)["image"]["arn"] == arn
    assert [v["owner"] for v in theirs.list_images()["imageVersionList"]] == [peer]

    mine = server.client()
    with pytest.raises(ClientError) as missing:
        mine.get_image(imageBuildVersionArn=arn)
    error = missing.value.response["Error"]
    assert error["Code"] == "ResourceNotFoundException" and arn in error["Message"]
    with pytest.raises(ClientError) as cancel:
        mine.cancel_image_creation(imageBuildVersionArn=arn, clientToken="c-1")
    assert cancel.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert mine.list_images()["imageVersionList"] == []
    assert mine.list_image_build_versions(imageVersionArn=arn.rsplit("/", 1)[0])["imageSummaryList"] == []
    # The default account's own build of the same version is its own, and only it is listed.
    mine_arn = records.create_image(
        name="web", version="1.0.0",
        recipe_arn=f"arn:aws:imagebuilder:local:{DEFAULT_ACCOUNT}:image-recipe/web/1.0.0",
        infrastructure_arn=f"arn:aws:imagebuilder:local:{DEFAULT_ACCOUNT}:infrastructure-configuration/build",
    )
    assert f":{DEFAULT_ACCOUNT}:image/web/1.0.0/" in mine_arn
    assert [i["arn"] for i in records.list_images(account=DEFAULT_ACCOUNT)] == [mine_arn]
    assert [b["arn"] for b in theirs.list_image_build_versions(
        imageVersionArn=arn.rsplit("/", 1)[0])["imageSummaryList"]] == [arn]


def test_another_accounts_pipeline_is_not_found(server) -> None:  # type: ignore[no-untyped-def]
    from kiln.services.accounts.accounts import create_access_key, create_account
    from kiln.services.components.resource import create_component
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.recipes.resource import create_image_recipe

    peer = create_account("peer")["Id"]
    component = create_component({"name": "comp", "semanticVersion": "1.0.0", "platform": "Linux", "data": (
        "name: comp\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: S\n"
        "        action: ExecuteBash\n        inputs:\n          commands: [echo hi]\n")}, account=peer)
    recipe = create_image_recipe({"name": "recipe", "semanticVersion": "1.0.0", "parentImage": "ami-0123456789abcdef0",
                                  "components": [{"componentArn": component["componentBuildVersionArn"]}]},
                                 account=peer)["imageRecipeArn"]
    infra = create_infrastructure_configuration({"name": "infra"}, account=peer)["infrastructureConfigurationArn"]
    theirs = server.client(key=create_access_key(peer))
    arn = theirs.create_image_pipeline(name="pipe", imageRecipeArn=recipe, infrastructureConfigurationArn=infra,
                                       clientToken="p-1")["imagePipelineArn"]
    assert f":{peer}:image-pipeline/pipe" in arn
    mine = server.client()
    update = {"imageRecipeArn": recipe, "infrastructureConfigurationArn": infra, "clientToken": "u-1"}
    for call, kwargs in ((mine.get_image_pipeline, {}), (mine.delete_image_pipeline, {}),
                         (mine.list_image_pipeline_images, {}), (mine.update_image_pipeline, update)):
        with pytest.raises(ClientError) as refused:
            call(imagePipelineArn=arn, **kwargs)
        assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert theirs.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]["arn"] == arn  # untouched
