from __future__ import annotations

import pytest

from kiln.errors import InvalidInput
from kiln.model.versions import (
    MAX_NODE,
    Version,
    VersionFilter,
    newest,
    parse_filter,
    parse_version,
    semver_key,
)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("1.2.3", True),
        ("1.2.x", True),
        ("1.x.x", True),
        ("x.x.x", True),
        ("x.2.x", False),
        ("1.x.8", False),
        ("x.x.3", False),
        ("x.2.3", False),
        ("1.2", False),
        ("1.2.3.4", False),
        ("a.b.c", False),
        ("1.2.X", False),
    ],
)
def test_wildcard_rules(text: str, valid: bool) -> None:
    if valid:
        assert str(parse_filter(text)) == text
    else:
        with pytest.raises(InvalidInput) as caught:
            parse_filter(text, field="components[0].componentArn")
        assert caught.value.location == "components[0].componentArn"


def test_wildcard_error_explains_right_alignment() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_filter("x.2.x")
    assert "after an x wildcard" in caught.value.message
    assert "right-aligned" in (caught.value.hint or "")


def test_version_limits() -> None:
    assert parse_version(f"{MAX_NODE}.0.0") == Version(MAX_NODE, 0, 0)
    with pytest.raises(InvalidInput) as caught:
        parse_version(f"1.{MAX_NODE + 1}.0")
    assert caught.value.location == "semanticVersion"
    assert "1073741823" in (caught.value.hint or "")


def test_concrete_version_refuses_wildcards() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_version("1.x.x")
    assert "wildcards" in (caught.value.hint or "")


def test_versions_compare_numerically() -> None:
    assert parse_version("1.10.0") > parse_version("1.9.9")
    assert parse_version("2021.01.01") == Version(2021, 1, 1)


def test_newest_picks_highest_match_then_highest_build() -> None:
    available = [
        (Version(2, 2, 4), 1),
        (Version(1, 7, 8), 1),
        (Version(1, 6, 8), 1),
        (Version(1, 6, 8), 3),
        (Version(1, 6, 8), 2),
    ]
    pick = lambda text: newest(available, parse_filter(text), lambda item: item)  # noqa: E731
    assert pick("x.x.x") == (Version(2, 2, 4), 1)
    assert pick("1.x.x") == (Version(1, 7, 8), 1)
    assert pick("1.6.x") == (Version(1, 6, 8), 3)
    assert pick("1.6.8") == (Version(1, 6, 8), 3)
    assert pick("3.x.x") is None


def test_exact_filter() -> None:
    assert parse_filter("1.2.3").exact == Version(1, 2, 3)
    assert VersionFilter((1, None, None)).exact is None


def test_semver_key_matches_image_builder_encoding() -> None:
    # The SNS example: version 1.0.0 build 3.
    assert semver_key(Version(1, 0, 0), 3) == 1237940039285380274899124227
