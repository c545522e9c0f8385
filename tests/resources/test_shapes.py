from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kiln.errors import InvalidInput
from kiln.model.component import CreateComponentRequest
from kiln.model.distribution import CreateDistributionConfigurationRequest
from kiln.model.infrastructure import CreateInfrastructureConfigurationRequest
from kiln.model.parent import parse_parent_image
from kiln.model.recipe import CreateImageRecipeRequest
from kiln.model.shapes import format_date, parse_shape
from kiln.model.templates import expand_name

COMPONENT = {"name": "my-comp", "semanticVersion": "1.0.0", "platform": "Linux", "data": "x"}


def problem(model: type, body: dict) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_shape(model, body, where="f.yaml: document 1")
    return caught.value


def test_unknown_field_is_named() -> None:
    error = problem(CreateComponentRequest, {**COMPONENT, "semanticversion": "1.0.0"})
    assert "unknown field 'semanticversion'" in str(error)
    assert error.location == "f.yaml: document 1: semanticversion"


def test_unknown_nested_field_is_named_with_its_path() -> None:
    body = {
        "name": "dist",
        "distributions": [{"region": "local", "amiDistributionConfiguration": {"nam": "x"}}],
    }
    error = problem(CreateDistributionConfigurationRequest, body)
    assert error.location.endswith("distributions[0].amiDistributionConfiguration.nam")


def test_bad_name_explained() -> None:
    error = problem(CreateComponentRequest, {**COMPONENT, "name": "ab"})
    assert "3 to 128" in error.message


def test_missing_required_field() -> None:
    error = problem(CreateComponentRequest, {"name": "my-comp", "platform": "Linux", "data": "x"})
    assert error.location.endswith("semanticVersion")
    assert "missing" in error.message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"description": ""}, "description"),
        ({"description": "d" * 1025}, "description"),
        ({"name": "ab"}, "name"),
        ({"name": " leading"}, "name"),
        ({"platform": "Plan9"}, "platform"),
        ({"data": "d" * 16001}, "data"),
        ({"tags": {"aws:reserved": "x"}}, "tags"),
        ({"tags": {"k": "v" * 257}}, "tags.k"),
        ({"semanticVersion": "1.0.x"}, "semanticVersion"),
    ],
)
def test_limits_from_the_model(change: dict, field: str) -> None:
    error = problem(CreateComponentRequest, {**COMPONENT, **change})
    assert field in error.location


def test_data_and_uri_are_exclusive() -> None:
    assert "exactly one of data" in problem(CreateComponentRequest, {**COMPONENT, "uri": "s3://b/k"}).message
    body = {key: value for key, value in COMPONENT.items() if key != "data"}
    assert "exactly one of data" in problem(CreateComponentRequest, body).message


def test_client_token_is_optional_and_limited() -> None:
    assert parse_shape(CreateComponentRequest, COMPONENT).clientToken is None
    assert "clientToken" in problem(CreateComponentRequest, {**COMPONENT, "clientToken": "t" * 65}).location


def test_recipe_component_arn_wildcards_checked() -> None:
    body = {
        "name": "recipe",
        "semanticVersion": "1.0.0",
        "parentImage": "debian:bookworm",
        "components": [{"componentArn": "arn:aws:imagebuilder:local:aws:component/update-linux/x.2.x"}],
    }
    error = problem(CreateImageRecipeRequest, body)
    assert error.location.endswith("components[0].componentArn")
    assert "after an x wildcard" in error.message


def test_recipe_block_device_limits() -> None:
    body = {
        "name": "recipe",
        "semanticVersion": "1.0.0",
        "parentImage": "debian:bookworm",
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 16001}}],
    }
    assert problem(CreateImageRecipeRequest, body).location.endswith("blockDeviceMappings[0].ebs.volumeSize")


def test_infrastructure_instance_profile_optional_but_checked() -> None:
    assert (
        parse_shape(CreateInfrastructureConfigurationRequest, {"name": "infra"}).instanceProfileName is None
    )
    error = problem(CreateInfrastructureConfigurationRequest, {"name": "infra", "instanceProfileName": "a b"})
    assert error.location.endswith("instanceProfileName")


def test_distribution_name_template_variables() -> None:
    good = {
        "name": "dist",
        "distributions": [
            {
                "region": "local",
                "amiDistributionConfiguration": {
                    "name": "demo-{{ imagebuilder:buildDate }}-{{imagebuilder:buildVersion}}"
                },
            }
        ],
    }
    parse_shape(CreateDistributionConfigurationRequest, good)
    bad = {
        "name": "dist",
        "distributions": [
            {"region": "local", "amiDistributionConfiguration": {"name": "demo-{{ imagebuilder:buildTime }}"}}
        ],
    }
    error = problem(CreateDistributionConfigurationRequest, bad)
    assert "imagebuilder:buildTime" in error.message


def test_distribution_regions_unique() -> None:
    body = {"name": "dist", "distributions": [{"region": "local"}, {"region": "local"}]}
    assert "more than one distribution" in problem(CreateDistributionConfigurationRequest, body).message


def test_expand_name() -> None:
    moment = datetime(2020, 2, 18, 22, 49, 8, 131000, tzinfo=UTC)
    assert expand_name("Name {{imagebuilder:buildDate}}", build_date=moment, build_version=3) == (
        "Name 2020-02-18T22-49-08.131Z"
    )
    assert expand_name("n-{{ imagebuilder:buildVersion }}", build_date=moment, build_version=7) == "n-7"


def test_format_date() -> None:
    assert format_date(datetime(2019, 12, 3, 18, 19, 55, 177000, tzinfo=UTC)) == "2019-12-03T18:19:55.177Z"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("ami-0123456789abcdef0", "ami"),
        ("arn:aws:imagebuilder:local:123456789012:image/base/1.x.x", "image"),
        ("arn:aws:imagebuilder:local:aws:image/base/1.0.0/2", "image"),
        ("debian:bookworm", "bootstrap"),
        ("ubuntu:noble", "bootstrap"),
    ],
)
def test_parent_image_kinds(value: str, kind: str) -> None:
    assert parse_parent_image(value).kind == kind


@pytest.mark.parametrize(
    "value",
    [
        "ami-123",
        "centos:7",
        "arn:aws:imagebuilder:local:123456789012:image/base/x.1.x",
        "ssm:",
        "bookworm",
    ],
)
def test_bad_parent_images(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_parent_image(value)
    assert caught.value.location == "parentImage"


@pytest.mark.parametrize("region", ["../etc", "Local", "a/b", ""])
def test_region_names_are_safe_directory_names(region: str) -> None:
    error = problem(
        CreateDistributionConfigurationRequest, {"name": "dist", "distributions": [{"region": region}]}
    )
    assert error.location.endswith("distributions[0].region")
