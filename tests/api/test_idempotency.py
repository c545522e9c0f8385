"""Idempotency tokens over the wire: EC2's ``ClientToken`` (RunInstances, CopyImage) and Image Builder's
``clientToken`` — a retry with the same token and request gets the first answer and makes nothing new;
the same token with another request is the service's parameter-mismatch error; tokens are per account."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server


@pytest.fixture
def ami(kiln_home: Path, busybox_dir: Path) -> str:
    from kiln.store import api

    return api.import_rootfs(busybox_dir, name="busybox-base")


def _code(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _image_ids(ec2: Any) -> list[str]:
    return sorted(image["ImageId"] for image in ec2.describe_images(Owners=["self"])["Images"])


def test_copy_image_with_a_client_token_copies_once(server: Server, ami: str) -> None:
    ec2 = server.client("ec2")
    first = ec2.copy_image(SourceImageId=ami, SourceRegion="local", Name="copy", ClientToken="copy-1")
    again = ec2.copy_image(SourceImageId=ami, SourceRegion="local", Name="copy", ClientToken="copy-1")
    assert again["ImageId"] == first["ImageId"]
    assert _image_ids(ec2) == sorted([ami, first["ImageId"]])
    assert _code(ec2.copy_image, SourceImageId=ami, SourceRegion="local", Name="other-name",
                 ClientToken="copy-1") == ("IdempotentParameterMismatch", 400)
    assert _code(ec2.copy_image, SourceImageId=ami, SourceRegion="local", Name="copy", ClientToken="copy-1",
                 DryRun=True) == ("DryRunOperation", 412)
    assert _image_ids(ec2) == sorted([ami, first["ImageId"]])
    # without a token (boto3 then sends a fresh one each time) every call copies
    assert ec2.copy_image(SourceImageId=ami, SourceRegion="local", Name="copy-2")["ImageId"] != first["ImageId"]
    assert len(_image_ids(ec2)) == 3


def test_a_failed_request_does_not_keep_its_token(server: Server, ami: str) -> None:
    ec2 = server.client("ec2")
    missing = "ami-0000000000000000f"
    assert _code(ec2.copy_image, SourceImageId=missing, SourceRegion="local", Name="copy",
                 ClientToken="retry-me")[0] == "InvalidAMIID.NotFound"
    # the token is free again: the same token now with a request that works
    copied = ec2.copy_image(SourceImageId=ami, SourceRegion="local", Name="copy", ClientToken="retry-me")
    assert copied["ImageId"] in _image_ids(ec2)


def test_tokens_belong_to_their_account(server: Server) -> None:
    from kiln.services.accounts.accounts import create_access_key, create_account

    other = server.client(key=create_access_key(create_account("account-b")["Id"]))
    mine = server.client()
    body = {"name": "build", "instanceProfileName": "builder", "clientToken": "shared-token"}
    first = mine.create_infrastructure_configuration(**body)["infrastructureConfigurationArn"]
    theirs = other.create_infrastructure_configuration(**body)["infrastructureConfigurationArn"]
    assert first != theirs  # another account's token of the same name is another token
    assert ":123456789012:" in first and ":123456789012:" not in theirs
    assert mine.create_infrastructure_configuration(**body)["infrastructureConfigurationArn"] == first
    assert _code(mine.create_image_recipe, name="web", semanticVersion="1.0.0", parentImage="ami-0123456789abcdef0",
                 components=[{"componentArn": "arn:aws:imagebuilder:local:123456789012:component/x/1.0.0/1"}],
                 clientToken="shared-token") == ("IdempotentParameterMismatchException", 400)


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")
def test_run_instances_with_a_client_token_launches_once(server: Server, ami: str) -> None:
    ec2 = server.client("ec2")
    first = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, ClientToken="launch-1")
    again = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, ClientToken="launch-1")
    assert [i["InstanceId"] for i in again["Instances"]] == [i["InstanceId"] for i in first["Instances"]]
    assert again["ReservationId"] == first["ReservationId"]
    running = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert running == [first["Instances"][0]["InstanceId"]]
    assert _code(ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=2, ClientToken="launch-1") == (
        "IdempotentParameterMismatch", 400)
    assert len(ec2.describe_instances()["Reservations"]) == 1
    ec2.terminate_instances(InstanceIds=running)
