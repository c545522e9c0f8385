"""Lifecycle policy shapes: limits, enums, cross-field rules, and errors that name the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lifecycle_fakes import body, rule

from kiln.errors import InvalidInput
from kiln.model.lifecycle import (
    CreateLifecyclePolicyRequest,
    UpdateLifecyclePolicyRequest,
    normalized_name,
    parse,
    policy_arn,
)


def test_valid_body_parses_with_defaults() -> None:
    request = parse(CreateLifecyclePolicyRequest, body())
    assert request.name == "retire-old"
    assert request.status is None and request.clientToken  # token filled in like the SDKs do
    assert request.policyDetails[0].filter.unit.value == "DAYS"


def with_(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(body())
    node: Any = data
    parts = path.replace("[", ".").replace("]", "").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if value is KeyError:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


CASES = [
    (with_("policyDetails[0].filter.colour", "red"), "policyDetails[0].filter", "unknown field 'colour'"),
    (with_("bogus", 1), None, "unknown field 'bogus'"),
    (with_("executionRole", KeyError), "executionRole", "required field is missing"),
    (with_("policyDetails[0].filter.unit", KeyError), "policyDetails[0].filter", "AGE filter requires unit"),
    (with_("policyDetails[0].filter.unit", "DECADES"), "policyDetails[0].filter.unit", "DAYS"),
    (
        with_("policyDetails[0].filter.value", 0),
        "policyDetails[0].filter.value",
        "greater than or equal to 1",
    ),
    (
        with_("policyDetails[0].filter.value", 1001),
        "policyDetails[0].filter.value",
        "less than or equal to 1000",
    ),
    (
        with_("policyDetails[0]", rule("DELETE", "AGE", 3, "DAYS", retain=11)),
        "retainAtLeast",
        "less than or equal",
    ),
    (
        with_("policyDetails[0]", rule("DELETE", "COUNT", 3, "DAYS")),
        "policyDetails[0].filter",
        "COUNT filter takes no unit",
    ),
    (
        with_("policyDetails[0]", rule("DELETE", "COUNT", 3, retain=2)),
        "policyDetails[0].filter",
        "no retainAtLeast",
    ),
    (
        with_("policyDetails[0]", rule("DEPRECATE", "COUNT", 3)),
        "policyDetails[0]",
        "COUNT filter can only be used with DELETE",
    ),
    (
        with_("policyDetails[0]", rule("DELETE", "AGE", 3, "DAYS", amis=False, snapshots=True)),
        "policyDetails[0].action",
        "snapshots needs includeResources.amis",
    ),
    (
        with_("policyDetails[0]", rule("DISABLE", "AGE", 3, "DAYS", snapshots=True)),
        "policyDetails[0].action",
        "DISABLE can include AMIs only",
    ),
    (
        with_("policyDetails", [rule("DELETE", "AGE", 3, "DAYS")] * 2),
        None,
        "at most one rule per action type (DELETE repeats)",
    ),
    (
        with_(
            "policyDetails",
            [rule(a, "AGE", 3, "DAYS") for a in ("DELETE", "DEPRECATE", "DISABLE", "DELETE")],
        ),
        "policyDetails",
        "at most 3 items",
    ),
    (with_("policyDetails", []), "policyDetails", "at least 1 item"),
    (
        with_(
            "resourceSelection",
            {"recipes": [{"name": "web", "semanticVersion": "1.0.0"}], "tagMap": {"a": "b"}},
        ),
        "resourceSelection",
        "exactly one selection criterion",
    ),
    (with_("resourceSelection", {}), "resourceSelection", "exactly one selection criterion"),
    (
        with_("resourceSelection", {"recipes": [{"name": "web", "semanticVersion": "x.2.x"}]}),
        "resourceSelection.recipes[0]",
        "after an 'x' every node must be 'x'",
    ),
    (
        with_("resourceSelection", {"recipes": [{"name": "web", "semanticVersion": "1.2"}]}),
        "resourceSelection.recipes[0].semanticVersion",
        "pattern",
    ),
    (with_("resourceSelection", {"tagMap": {"aws:owner": "x"}}), "resourceSelection.tagMap", "pattern"),
    (with_("name", "x"), "name", "pattern"),
    (with_("resourceType", "VM_IMAGE"), "resourceType", "AMI_IMAGE"),
    (with_("status", "ON"), "status", "ENABLED"),
    (
        with_(
            "policyDetails[0]",
            rule(
                "DELETE",
                "AGE",
                3,
                "DAYS",
                exclusions={"amis": {"lastLaunched": {"value": 366, "unit": "DAYS"}}},
            ),
        ),
        "policyDetails[0].exclusionRules.amis.lastLaunched.value",
        "less than or equal to 365",
    ),
    (
        with_(
            "policyDetails[0]",
            rule("DELETE", "AGE", 3, "DAYS", exclusions={"amis": {"sharedAccounts": ["12345"]}}),
        ),
        "policyDetails[0].exclusionRules.amis.sharedAccounts[0]",
        "pattern",
    ),
]


@pytest.mark.parametrize(("data", "location", "message"), CASES)
def test_invalid_bodies_name_the_field(data: dict[str, Any], location: str | None, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(CreateLifecyclePolicyRequest, data)
    if location is not None:
        assert caught.value.location is not None and location in caught.value.location
    assert message in str(caught.value)


def test_container_policies_only_delete_and_no_amis() -> None:
    data = body(rule("DEPRECATE", "AGE", 3, "DAYS", amis=False), resource_type="CONTAINER_IMAGE")
    with pytest.raises(InvalidInput, match="CONTAINER_IMAGE policies support only DELETE"):
        parse(CreateLifecyclePolicyRequest, data)
    data = body(rule("DELETE", "AGE", 3, "DAYS", amis=True), resource_type="CONTAINER_IMAGE")
    with pytest.raises(InvalidInput, match="cannot include AMIs"):
        parse(CreateLifecyclePolicyRequest, data)
    ok = {
        "action": {"type": "DELETE", "includeResources": {"containers": True}},
        "filter": {"type": "COUNT", "value": 5},
    }
    assert parse(
        CreateLifecyclePolicyRequest, body(ok, resource_type="CONTAINER_IMAGE")
    ).resourceType.value == ("CONTAINER_IMAGE")
    with pytest.raises(InvalidInput, match="AMI_IMAGE policies cannot include containers"):
        parse(CreateLifecyclePolicyRequest, body(ok))


def test_update_requires_a_policy_arn() -> None:
    data = body()
    del data["name"]
    with pytest.raises(InvalidInput, match="required field is missing") as caught:
        parse(UpdateLifecyclePolicyRequest, data)
    assert caught.value.location == "lifecyclePolicyArn"
    data["lifecyclePolicyArn"] = "arn:aws:imagebuilder:local:123456789012:lifecycle-policy/Bad Name"
    with pytest.raises(InvalidInput, match="pattern"):
        parse(UpdateLifecyclePolicyRequest, data)


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("retire-old", "retire-old"),
        ("My Policy", "my-policy"),
        ("My_Policy", "my-policy"),
        ("ABC 1_x", "abc-1-x"),
    ],
)
def test_arn_from_normalized_name(name: str, normal: str) -> None:
    assert normalized_name(name) == normal
    assert policy_arn(name) == f"arn:aws:imagebuilder:local:123456789012:lifecycle-policy/{normal}"


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidInput, match="expected an object"):
        parse(CreateLifecyclePolicyRequest, ["not", "a", "dict"])
