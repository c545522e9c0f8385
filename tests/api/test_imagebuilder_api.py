"""boto3's Image Builder client against a real ``kiln`` API server on loopback."""

from __future__ import annotations

import urllib.request

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server

COMPONENT = """\
name: hello
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Hello
        action: ExecuteBash
        inputs:
          commands: [echo hello]
"""


def test_resources_round_trip(server: Server) -> None:
    client = server.client()
    created = client.create_component(name="hello", semanticVersion="1.0.0", platform="Linux", data=COMPONENT,
                                      clientToken="token-1")
    arn = created["componentBuildVersionArn"]
    assert arn == "arn:aws:imagebuilder:local:123456789012:component/hello/1.0.0/1"
    assert client.get_component(componentBuildVersionArn=arn)["component"]["name"] == "hello"
    recipe = client.create_image_recipe(
        name="web", semanticVersion="1.0.0", parentImage="ami-0123456789abcdef0",
        components=[{"componentArn": "arn:aws:imagebuilder:local:123456789012:component/hello/x.x.x"}],
    )["imageRecipeArn"]
    assert client.get_image_recipe(imageRecipeArn=recipe)["imageRecipe"]["name"] == "web"
    infra = client.create_infrastructure_configuration(name="build", instanceProfileName="builder")
    client.tag_resource(resourceArn=infra["infrastructureConfigurationArn"], tags={"team": "platform"})
    tags = client.list_tags_for_resource(resourceArn=infra["infrastructureConfigurationArn"])["tags"]
    assert tags == {"team": "platform"}
    with pytest.raises(ClientError) as missing:
        client.get_image_recipe(imageRecipeArn="arn:aws:imagebuilder:local:123456789012:image-recipe/none/1.0.0")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_pagination_with_small_pages(server: Server) -> None:
    client = server.client()
    for number in range(7):
        client.create_infrastructure_configuration(name=f"infra-{number}", instanceProfileName="builder")
    pages = list(client.get_paginator("list_infrastructure_configurations").paginate(
        PaginationConfig={"PageSize": 2}
    ))
    assert [len(p["infrastructureConfigurationSummaryList"]) for p in pages] == [2, 2, 2, 1]
    names = [s["name"] for p in pages for s in p["infrastructureConfigurationSummaryList"]]
    assert names == sorted(f"infra-{n}" for n in range(7))
    with pytest.raises(ClientError) as bad:
        client.list_infrastructure_configurations(nextToken="not-a-token")
    assert bad.value.response["Error"]["Code"] == "InvalidPaginationTokenException"


def test_every_request_must_be_signed_by_a_known_key(server: Server) -> None:
    with urllib.request.urlopen(f"{server.endpoint}/health") as response:
        assert response.status == 200
    stranger = server.client(key={"AccessKeyId": "AKIAUNKNOWNKEY000000", "SecretAccessKey": "x" * 40})
    with pytest.raises(ClientError) as unknown:
        stranger.list_components()
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"
    forger = server.client(key={**server.key, "SecretAccessKey": "y" * 40})
    with pytest.raises(ClientError) as forged:
        forger.list_components()
    assert forged.value.response["Error"]["Code"] == "InvalidSignatureException"
    request = urllib.request.Request(f"{server.endpoint}/ListComponents", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(request)
    assert anonymous.value.code == 403
    assert anonymous.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def _builds() -> dict[str, str]:
    from kiln.services.builds import records

    arns = {}
    for name, version in (("web", "1.0.0"), ("web", "1.0.0"), ("web", "1.1.0"), ("api", "2.0.0")):
        arn = records.create_image(name=name, version=version,
                                   recipe_arn=f"arn:aws:imagebuilder:local:123456789012:image-recipe/{name}/{version}",
                                   infrastructure_arn="arn:aws:imagebuilder:local:123456789012:"
                                                      "infrastructure-configuration/build")
        arns[arn.split(":image/")[1]] = arn
    records.finish_available(arns["web/1.0.0/1"], [])
    return arns


def test_images_and_their_builds(server: Server) -> None:
    arns = _builds()
    client = server.client()
    image = client.get_image(imageBuildVersionArn=arns["web/1.0.0/1"])["image"]
    assert (image["arn"], image["state"]["status"], image["version"]) == (arns["web/1.0.0/1"], "AVAILABLE",
                                                                          "1.0.0/1")
    pages = list(client.get_paginator("list_images").paginate(PaginationConfig={"PageSize": 1}))
    assert [[v["arn"].split(":image/")[1] for v in p["imageVersionList"]] for p in pages] == [
        ["api/2.0.0"], ["web/1.0.0"], ["web/1.1.0"]]
    assert pages[0]["imageVersionList"][0]["owner"] == "123456789012"
    by_name = client.list_images(byName=True)["imageVersionList"]
    assert [(v["name"], v["version"]) for v in by_name] == [("api", "2.0.0"), ("web", "1.1.0")]
    assert len(client.list_images(filters=[{"name": "name", "values": ["web"]}])["imageVersionList"]) == 2
    assert client.list_images(owner="Amazon")["imageVersionList"] == []
    version_arn = arns["web/1.0.0/1"].rsplit("/", 1)[0]
    builds = client.list_image_build_versions(imageVersionArn=version_arn)["imageSummaryList"]
    assert [(b["arn"], b["state"]["status"]) for b in builds] == [
        (arns["web/1.0.0/1"], "AVAILABLE"), (arns["web/1.0.0/2"], "PENDING")]

    cancelled = client.cancel_image_creation(imageBuildVersionArn=arns["web/1.0.0/2"], clientToken="cancel-1")
    assert (cancelled["imageBuildVersionArn"], cancelled["clientToken"]) == (arns["web/1.0.0/2"], "cancel-1")
    again = client.cancel_image_creation(imageBuildVersionArn=arns["web/1.0.0/2"], clientToken="cancel-1")
    assert again["imageBuildVersionArn"] == arns["web/1.0.0/2"]
    with pytest.raises(ClientError) as finished:
        client.cancel_image_creation(imageBuildVersionArn=arns["web/1.0.0/1"], clientToken="cancel-2")
    assert finished.value.response["Error"]["Code"] == "ResourceInUseException"
    with pytest.raises(ClientError) as missing:
        client.get_image(imageBuildVersionArn="arn:aws:imagebuilder:local:123456789012:image/none/1.0.0/1")
    assert (missing.value.response["Error"]["Code"], missing.value.response["ResponseMetadata"]["HTTPStatusCode"]) \
        == ("ResourceNotFoundException", 404)


def test_client_token_makes_creates_idempotent(server: Server) -> None:
    client = server.client()
    first = client.create_component(name="hello", semanticVersion="1.0.0", platform="Linux", data=COMPONENT,
                                    clientToken="same-token")
    second = client.create_component(name="hello", semanticVersion="1.0.0", platform="Linux", data=COMPONENT,
                                     clientToken="same-token")
    assert second["componentBuildVersionArn"] == first["componentBuildVersionArn"]
    assert second["clientToken"] == "same-token"
    with pytest.raises(ClientError) as mismatch:
        client.create_component(name="hello", semanticVersion="1.0.1", platform="Linux", data=COMPONENT,
                                clientToken="same-token")
    assert mismatch.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert mismatch.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    infra = [client.create_infrastructure_configuration(name="build", instanceProfileName="builder",
                                                        clientToken="infra-token")
             for _ in range(2)]
    assert infra[0]["infrastructureConfigurationArn"] == infra[1]["infrastructureConfigurationArn"]
    with pytest.raises(ClientError) as changed:
        client.create_infrastructure_configuration(name="build", instanceProfileName="other",
                                                   clientToken="infra-token")
    assert changed.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert len(client.list_components()["componentVersionList"]) == 1
