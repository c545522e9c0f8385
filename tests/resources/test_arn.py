from __future__ import annotations

import pytest

from kiln.errors import InvalidInput
from kiln.model.arn import arn_name, make_arn, parse_arn
from kiln.model.versions import Version


@pytest.mark.parametrize(
    "text",
    [
        "arn:aws:imagebuilder:local:123456789012:component/my-comp/1.0.0/1",
        "arn:aws:imagebuilder:local:123456789012:component/my-comp/1.x.x",
        "arn:aws:imagebuilder:us-west-2:aws:component/update-linux/x.x.x",
        "arn:aws:imagebuilder:local:123456789012:image-recipe/demo/2019.12.3",
        "arn:aws:imagebuilder:local:123456789012:image/demo/1.0.0/7",
        "arn:aws:imagebuilder:local:123456789012:infrastructure-configuration/infra",
        "arn:aws:imagebuilder:local:123456789012:distribution-configuration/dist",
        "arn:aws:imagebuilder:local:123456789012:image-pipeline/nightly",
        "arn:aws:imagebuilder:local:123456789012:lifecycle-policy/keep-5",
        "arn:aws:imagebuilder:local:123456789012:workflow/build/my-flow/1.0.0/1",
    ],
)
def test_round_trip(text: str) -> None:
    assert str(parse_arn(text)) == text


def test_fields() -> None:
    arn = parse_arn("arn:aws:imagebuilder:local:aws:component/update-linux/1.2.3/4")
    assert (arn.region, arn.account, arn.resource_type, arn.name, arn.build) == (
        "local",
        "aws",
        "component",
        "update-linux",
        4,
    )
    assert arn.exact_version == Version(1, 2, 3)
    assert str(arn.without_build()) == "arn:aws:imagebuilder:local:aws:component/update-linux/1.2.3"


def test_name_is_lowercased_with_hyphens() -> None:
    assert arn_name("My Example Image") == "my-example-image"
    assert arn_name("MyBasicRecipe") == "mybasicrecipe"
    arn = make_arn("image-recipe", "My Basic Recipe", Version(1, 0, 0))
    assert str(arn) == "arn:aws:imagebuilder:local:123456789012:image-recipe/my-basic-recipe/1.0.0"


def test_managed_account_and_defaults() -> None:
    arn = make_arn("component", "update-linux", "1.0.0", 1, account="aws")
    assert str(arn) == "arn:aws:imagebuilder:local:aws:component/update-linux/1.0.0/1"


def test_short_form_gets_default_region_and_account() -> None:
    arn = parse_arn("component/nginx/1.x.x", allow_short=True)
    assert str(arn) == "arn:aws:imagebuilder:local:123456789012:component/nginx/1.x.x"
    with pytest.raises(InvalidInput):
        parse_arn("component/nginx/1.x.x")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("arn:aws:imagebuilder:local:123456789012:component/n/x.2.x", "after an x wildcard"),
        ("arn:aws:imagebuilder:local:123456789012:component/n/1.x.x/1", "concrete version"),
        ("arn:aws:imagebuilder:local:123456789012:infrastructure-configuration/n/1.0.0", "no version"),
        ("arn:aws:imagebuilder:local:123456789012:gadget/n", "unknown"),
        ("arn:aws:imagebuilder:local:12345:component/n/1.0.0", "not an Image Builder ARN"),
        ("arn:aws:imagebuilder:local:123456789012:component/Upper/1.0.0", "not an Image Builder ARN"),
    ],
)
def test_bad_arns(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_arn(text, field="componentArn")
    assert problem in caught.value.message
    assert caught.value.location == "componentArn"


def test_type_restriction() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_arn("arn:aws:imagebuilder:local:123456789012:image/demo/1.0.0/1", resource_type="component")
    assert "expected a component ARN" in caught.value.message
