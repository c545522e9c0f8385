"""SSM Parameter Store semantics: versions, overwrite refusal, history, labels and selectors, names,
and ``aws:ec2:image`` values checked against what the account may use in the region."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.ec2_errors import InvalidParameterValue
from kiln.home import DEFAULT_ACCOUNT
from kiln.services.accounts import accounts, regions
from kiln.services.common.events import list_events
from kiln.services.ec2 import images
from kiln.services.parameters import parameter_store as ssm
from kiln.services.parameters.errors import (
    HierarchyLevelLimitExceeded,
    InvalidImageParameterValue,
    ParameterAlreadyExists,
    ParameterMaxVersionLimitExceeded,
    ParameterNotFound,
    ParameterVersionLabelLimitExceeded,
    ParameterVersionNotFound,
    UnsupportedParameterType,
    ValidationException,
)
from kiln.services.parameters.resolve import resolve_image_parameter

PEER = "210987654321"


@pytest.fixture
def ami(busybox_dir: Path) -> str:
    return str(images.import_image(busybox_dir, name="golden-web")["ImageId"])


def test_versions_increment_overwrite_is_required_and_history_is_kept() -> None:
    assert ssm.put_parameter("/golden/web/owner", "team-a", description="who") == 1
    with pytest.raises(ParameterAlreadyExists) as refused:
        ssm.put_parameter("/golden/web/owner", "team-b")
    assert "/golden/web/owner" in str(refused.value) and refused.value.code == "ParameterAlreadyExists"
    assert ssm.get_parameter("/golden/web/owner")["Value"] == "team-a"
    assert ssm.put_parameter("/golden/web/owner", "team-b", overwrite=True) == 2
    assert ssm.put_parameter("/golden/web/owner", "team-c", overwrite=True, parameter_type="StringList") == 3

    latest = ssm.get_parameter("/golden/web/owner")
    assert (latest["Value"], latest["Version"], latest["Type"], latest["DataType"]) == (
        "team-c", 3, "StringList", "text")
    assert latest["ARN"] == f"arn:aws:ssm:local:{DEFAULT_ACCOUNT}:parameter/golden/web/owner"
    history = ssm.get_parameter_history("/golden/web/owner")
    assert [(h["Version"], h["Value"]) for h in history] == [(1, "team-a"), (2, "team-b"), (3, "team-c")]
    assert all(h["Description"] == "who" for h in history)  # an overwrite keeps what it does not change
    assert history[0]["LastModifiedUser"] == f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"


def test_labels_move_and_selectors_pick_a_version_or_a_label_never_falling_back() -> None:
    for value in ("v1", "v2", "v3"):
        ssm.put_parameter("/app/config", value, overwrite=True)
    assert ssm.label_parameter_version("/app/config", ["stable"], version=1) == {
        "InvalidLabels": [], "ParameterVersion": 1}
    assert ssm.label_parameter_version("/app/config", ["prod", "9lives", "awsy"]) == {
        "InvalidLabels": ["9lives", "awsy"], "ParameterVersion": 3}
    assert ssm.get_parameter("/app/config:stable")["Value"] == "v1"
    assert ssm.get_parameter("/app/config:stable")["Selector"] == ":stable"
    assert ssm.get_parameter("/app/config:2")["Value"] == "v2"
    assert ssm.get_parameter("/app/config:prod")["Version"] == 3

    ssm.label_parameter_version("/app/config", ["stable"], version=2)  # a label is unique: it moves
    assert ssm.get_parameter("/app/config:stable")["Value"] == "v2"
    assert {h["Version"]: h["Labels"] for h in ssm.get_parameter_history("/app/config")} == {
        1: [], 2: ["stable"], 3: ["prod"]}

    with pytest.raises(ParameterVersionNotFound):
        ssm.get_parameter("/app/config:7")
    with pytest.raises(ParameterVersionNotFound):
        ssm.get_parameter("/app/config:canary")
    with pytest.raises(ParameterVersionNotFound):
        ssm.label_parameter_version("/app/config", ["x"], version=9)
    with pytest.raises(ParameterNotFound):
        ssm.get_parameter("/app/other")
    with pytest.raises(ParameterVersionLabelLimitExceeded):
        ssm.label_parameter_version("/app/config", [f"l{i}" for i in range(10)], version=2)
    assert {h["Version"]: h["Labels"] for h in ssm.get_parameter_history("/app/config")}[2] == ["stable"]

    assert ssm.unlabel_parameter_version("/app/config", 2, ["stable", "prod"]) == {
        "RemovedLabels": ["stable"], "InvalidLabels": ["prod"]}


def test_the_oldest_of_a_hundred_versions_goes_unless_it_is_labelled() -> None:
    for number in range(1, 101):
        ssm.put_parameter("/many", str(number), overwrite=True)
    ssm.label_parameter_version("/many", ["first"], version=1)
    with pytest.raises(ParameterMaxVersionLimitExceeded) as refused:
        ssm.put_parameter("/many", "101", overwrite=True)
    assert "Version 1, the oldest version" in refused.value.message
    assert ssm.get_parameter("/many")["Version"] == 100
    ssm.label_parameter_version("/many", ["first"], version=50)
    assert ssm.put_parameter("/many", "101", overwrite=True) == 101
    history = ssm.get_parameter_history("/many")
    assert (len(history), history[0]["Version"]) == (100, 2)


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("/golden/web latest", ValidationException, "characters SSM does not allow"),
        ("golden/web", ValidationException, "no leading '/'"),
        ("/golden//web", ValidationException, "empty level"),
        ("/aws/service/x", ValidationException, "reserved"),
        ("SSM-thing", ValidationException, "reserved"),
        ("/" + "/".join("l" * 16), HierarchyLevelLimitExceeded, "16 levels"),
        ("x" * 1012, ValidationException, "at most 1011"),
        ("", ValidationException, "required"),
    ],
)
def test_bad_names_get_one_clear_error_and_nothing_is_written(name: str, error: type, words: str) -> None:
    with pytest.raises(error) as refused:
        ssm.put_parameter(name, "value")
    assert words in refused.value.message and refused.value.location == "Name"
    assert ssm.describe_parameters() == []


def test_outer_spaces_are_trimmed_and_types_are_checked() -> None:
    assert ssm.put_parameter("  /trimmed  ", "v") == 1
    assert ssm.get_parameter("/trimmed")["Value"] == "v"
    with pytest.raises(UnsupportedParameterType):
        ssm.put_parameter("/secret", "v", parameter_type="SecureString")
    with pytest.raises(ValidationException, match="Type 'Str'"):
        ssm.put_parameter("/secret", "v", parameter_type="Str")
    with pytest.raises(ValidationException, match="DataType 'aws:region'"):
        ssm.put_parameter("/secret", "v", data_type="aws:region")
    assert [p["Name"] for p in ssm.describe_parameters()] == ["/trimmed"]


def test_image_values_must_be_amis_the_account_may_use_in_that_region(ami: str) -> None:
    regions.create_region("eu-west-1")
    accounts.create_account("peer", account_id=PEER)
    assert ssm.put_parameter("/golden/web/latest", ami, data_type="aws:ec2:image") == 1
    assert resolve_image_parameter("resolve:ssm:/golden/web/latest") == ami

    missing = "ami-0123456789abcdef0"
    with pytest.raises(InvalidImageParameterValue) as refused:
        ssm.put_parameter("/golden/web/latest", missing, overwrite=True)  # keeps aws:ec2:image
    assert missing in refused.value.message and refused.value.code == "ValidationException"
    assert ssm.get_parameter("/golden/web/latest")["Version"] == 1
    event = list_events()[-1]
    assert event["kind"] == "Parameter Store Change"
    assert event["detail"] == {"operation": "Update", "name": "/golden/web/latest", "type": "String",
                               "dataType": "aws:ec2:image", "exception": "Unable to Describe Resource"}

    # Region isolation: the AMI lives in ``local``; in eu-west-1 it does not exist.
    with pytest.raises(InvalidImageParameterValue, match="region eu-west-1"):
        ssm.put_parameter("/golden/web/latest", ami, data_type="aws:ec2:image", region="eu-west-1")
    assert ssm.describe_parameters(region="eu-west-1") == []
    # Another account cannot name a private AMI it was not given; once shared, it can.
    with pytest.raises(InvalidImageParameterValue, match=f"not shared with account {PEER}"):
        ssm.put_parameter("/golden/web/latest", ami, data_type="aws:ec2:image", account=PEER)
    images.modify_launch_permission(ami, add=[{"UserId": PEER}])
    assert ssm.put_parameter("/golden/web/latest", ami, data_type="aws:ec2:image", account=PEER) == 1
    # Parameters are per account: each has its own /golden/web/latest, at version 1.
    assert ssm.get_parameter("/golden/web/latest", account=PEER)["ARN"].split(":")[4] == PEER
    assert [(p["ARN"].split(":")[4], p["Version"]) for p in ssm.describe_parameters()] == [(DEFAULT_ACCOUNT, 1)]

    with pytest.raises(InvalidImageParameterValue, match="is not an AMI id"):
        ssm.put_parameter("/golden/web/bad", "web-1", data_type="aws:ec2:image")
    with pytest.raises(ValidationException, match="cannot change to or from aws:ec2:image"):
        ssm.put_parameter("/golden/web/latest", "text now", data_type="text", overwrite=True)
    with pytest.raises(ValidationException, match="needs Type String"):
        ssm.put_parameter("/golden/web/list", ami, parameter_type="StringList", data_type="aws:ec2:image")
    images.deregister_image(ami)
    with pytest.raises(InvalidImageParameterValue, match="deregistered"):
        ssm.put_parameter("/golden/web/latest", ami, overwrite=True)


def test_resolving_needs_an_image_parameter(ami: str) -> None:
    ssm.put_parameter("/plain", ami)
    with pytest.raises(InvalidParameterValue, match="data type text"):
        resolve_image_parameter("resolve:ssm:/plain")
    with pytest.raises(ParameterNotFound):
        resolve_image_parameter("resolve:ssm:/nothing")
    ssm.put_parameter("/img", ami, data_type="aws:ec2:image")
    ssm.label_parameter_version("/img", ["good"])
    assert resolve_image_parameter("resolve:ssm:/img:good") == resolve_image_parameter("resolve:ssm:/img:1") == ami
    with pytest.raises(ParameterVersionNotFound):
        resolve_image_parameter("resolve:ssm:/img:2")


def test_listing_by_path_and_deleting() -> None:
    for name in ("/golden/web/latest", "/golden/web/previous", "/golden/db", "/other", "flat"):
        ssm.put_parameter(name, "v")
    assert [p["Name"] for p in ssm.describe_parameters(path="/golden")] == [
        "/golden/db", "/golden/web/latest", "/golden/web/previous"]
    assert [p["Name"] for p in ssm.describe_parameters(path="/golden", recursive=False)] == ["/golden/db"]
    with pytest.raises(ValidationException):
        ssm.describe_parameters(path="golden")
    ssm.label_parameter_version("/golden/db", ["keep"])
    ssm.delete_parameter("/golden/db")
    with pytest.raises(ParameterNotFound):
        ssm.delete_parameter("/golden/db")
    assert ssm.put_parameter("/golden/db", "again") == 1  # a deleted name starts over
    with pytest.raises(ParameterVersionNotFound):
        ssm.get_parameter("/golden/db:keep")


def test_a_parameter_is_read_by_its_arn_too(ami: str) -> None:
    ssm.put_parameter("/golden/web/latest", ami, data_type="aws:ec2:image")
    ssm.put_parameter("flat", "v")
    ssm.label_parameter_version("/golden/web/latest", ["good"])
    arn = ssm.get_parameter("/golden/web/latest")["ARN"]
    assert ssm.get_parameter(arn)["Name"] == "/golden/web/latest"
    assert ssm.get_parameter(f"{arn}:good")["Version"] == 1
    assert resolve_image_parameter(f"resolve:ssm:{arn}:1") == ami
    assert ssm.get_parameter(ssm.get_parameter("flat")["ARN"])["Value"] == "v"
    accounts.create_account("peer", account_id=PEER)
    with pytest.raises(ParameterNotFound, match="not one of account"):
        ssm.get_parameter(arn, account=PEER)
    with pytest.raises(ValidationException, match="not a parameter ARN"):
        ssm.get_parameter("arn:aws:ssm:local:123:parameter/x")
