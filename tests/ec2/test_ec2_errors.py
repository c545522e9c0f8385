"""EC2 errors are classes whose code and HTTP status are data; messages are EC2's text without the code."""

from __future__ import annotations

import pytest

from kiln import ec2_errors
from kiln.ec2_errors import (
    Ec2Error,
    IncorrectInstanceState,
    InvalidAMIIDNotFound,
    InvalidAMIIDUnavailable,
    InvalidParameterValue,
    InvalidSnapshotNotFound,
)
from kiln.errors import Conflict, Forbidden, InvalidInput, NotFound


def test_the_code_is_class_data_and_the_message_leaves_it_out() -> None:
    error = InvalidAMIIDNotFound("ami-0123456789abcdef0")
    assert (type(error).code, error.code, error.http_status) == ("InvalidAMIID.NotFound",) * 2 + (400,)
    assert error.message == "The image id '[ami-0123456789abcdef0]' does not exist"
    assert str(error) == "InvalidAMIID.NotFound: The image id '[ami-0123456789abcdef0]' does not exist"
    assert InvalidAMIIDNotFound("ami-1", "ami-2").message == "The image ids '[ami-1, ami-2]' do not exist"
    assert InvalidSnapshotNotFound("snap-1").message == "The snapshot 'snap-1' does not exist."


def test_each_class_is_also_the_generic_error_it_is_a_kind_of() -> None:
    assert isinstance(InvalidAMIIDNotFound("ami-1"), NotFound)
    assert isinstance(InvalidAMIIDUnavailable("gone"), Conflict)
    assert isinstance(IncorrectInstanceState("stopped"), Conflict)
    located = InvalidParameterValue("The filter 'x' is invalid", location="x")
    assert isinstance(located, InvalidInput)
    assert str(located) == "InvalidParameterValue: x: The filter 'x' is invalid"
    protected = ec2_errors.ImageDeregistrationProtected("The image ami-1 has deregistration protection")
    assert isinstance(protected, Forbidden) and protected.code == "InvalidParameterValue"


def test_every_code_has_one_class() -> None:
    classes = ec2_errors.error_classes()
    assert classes["InvalidSnapshot.InUse"] is ec2_errors.InvalidSnapshotInUse
    assert classes["InvalidInstanceID.NotFound"] is ec2_errors.InvalidInstanceIDNotFound
    assert classes["InvalidParameterValue"] is ec2_errors.InvalidParameterValue  # the general one
    for code, cls in classes.items():
        assert cls.code == code and issubclass(cls, Ec2Error) and cls.http_status == 400
        assert "." not in cls.__name__


def test_the_store_raises_them_without_the_code_in_the_text() -> None:
    from kiln.store import api

    with pytest.raises(InvalidAMIIDNotFound) as caught:
        api.get_image("ami-00000000000000000")
    assert caught.value.code == "InvalidAMIID.NotFound" and "InvalidAMIID" not in caught.value.message
    with pytest.raises(InvalidSnapshotNotFound):
        api.delete_snapshot("snap-00000000000000000")


def test_the_cli_prints_the_code_then_the_message(kiln) -> None:
    result = kiln("image", "describe", "ami-00000000000000000")
    assert result.exit_code == 1
    err = result.stderr
    assert err.splitlines()[0] == "error: InvalidAMIID.NotFound: The image id '[ami-00000000000000000]' does not exist"
    assert err.splitlines()[1].startswith("hint: ")

