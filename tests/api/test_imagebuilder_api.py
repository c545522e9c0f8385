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
