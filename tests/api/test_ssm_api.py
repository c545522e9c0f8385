"""boto3's SSM client against ``kiln serve``: Parameter Store over the json 1.1 protocol, per signing
account and region, with SSM's error codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server


def _code(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_parameter_store_over_the_wire(server: Server, busybox_dir: Path) -> None:
    from kiln.services.ec2 import images

    ami = str(images.import_image(busybox_dir, name="golden-web")["ImageId"])
    ssm = server.client("ssm")
    assert ssm.put_parameter(Name="/golden/web/latest", Value=ami, Type="String",
                             DataType="aws:ec2:image")["Version"] == 1
    assert _code(ssm.put_parameter, Name="/golden/web/latest", Value=ami, Type="String") == (
        "ParameterAlreadyExists", 400)
    assert _code(ssm.put_parameter, Name="/golden/web/latest", Value="ami-0123456789abcdef0",
                 Overwrite=True) == ("ValidationException", 400)
    assert _code(ssm.put_parameter, Name="/golden/web latest", Value="x", Type="String") == (
        "ValidationException", 400)
    assert _code(ssm.put_parameter, Name="/secret", Value="x", Type="SecureString") == (
        "UnsupportedParameterType", 400)
    assert ssm.put_parameter(Name="/golden/web/latest", Value=ami, Overwrite=True)["Version"] == 2
    labelled = ssm.label_parameter_version(Name="/golden/web/latest", ParameterVersion=1, Labels=["first", "1x"])
    assert (labelled["InvalidLabels"], labelled["ParameterVersion"]) == (["1x"], 1)

    got = ssm.get_parameter(Name="/golden/web/latest:first")["Parameter"]
    assert (got["Value"], got["Version"], got["DataType"], got["Selector"]) == (ami, 1, "aws:ec2:image", ":first")
    assert got["ARN"] == "arn:aws:ssm:local:123456789012:parameter/golden/web/latest"
    assert got["LastModifiedDate"].tzinfo is not None
    assert _code(ssm.get_parameter, Name="/golden/web/latest:7") == ("ParameterVersionNotFound", 400)
    assert _code(ssm.get_parameter, Name="/nothing") == ("ParameterNotFound", 400)

    history = ssm.get_parameter_history(Name="/golden/web/latest")["Parameters"]
    assert [(h["Version"], h["Labels"]) for h in history] == [(1, ["first"]), (2, [])]
    ssm.put_parameter(Name="/golden/db/latest", Value="db-1", Type="String")
    ssm.put_parameter(Name="/other", Value="o", Type="StringList")
    assert [p["Name"] for p in ssm.get_parameters_by_path(Path="/golden", Recursive=True)["Parameters"]] == [
        "/golden/db/latest", "/golden/web/latest"]
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "BeginsWith",
                                                           "Values": ["/golden/"]}])["Parameters"]
    assert [(p["Name"], p["DataType"]) for p in described] == [("/golden/db/latest", "text"),
                                                                ("/golden/web/latest", "aws:ec2:image")]
    assert "Value" not in described[0]
    both = ssm.get_parameters(Names=["/other", "/missing"])
    assert ([p["Name"] for p in both["Parameters"]], both["InvalidParameters"]) == (["/other"], ["/missing"])

    # Another account signs: it has none of these.
    from kiln.services.accounts.accounts import create_access_key, create_account

    create_account("peer", account_id="210987654321")
    peer = server.client("ssm", key=create_access_key("210987654321"))
    assert _code(peer.get_parameter, Name="/golden/web/latest") == ("ParameterNotFound", 400)

    ssm.delete_parameter(Name="/other")
    assert _code(ssm.delete_parameter, Name="/other") == ("ParameterNotFound", 400)
    assert ssm.delete_parameters(Names=["/golden/db/latest", "/gone"])["InvalidParameters"] == ["/gone"]
