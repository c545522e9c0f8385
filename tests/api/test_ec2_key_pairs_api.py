"""EC2 key pairs over the API with boto3: create (the private key once), import, describe, delete,
and EC2's error codes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server


def test_key_pairs_over_the_api(server: Server, tmp_path: Path) -> None:
    ec2 = server.client("ec2")
    tagged = [{"ResourceType": "key-pair", "Tags": [{"Key": "t", "Value": "1"}]}]
    created = ec2.create_key_pair(KeyName="laptop", KeyType="ed25519", TagSpecifications=tagged)
    assert created["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert created["KeyPairId"].startswith("key-") and created["Tags"] == [{"Key": "t", "Value": "1"}]
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(tmp_path / "id")], check=True)
    imported = ec2.import_key_pair(KeyName="mine", PublicKeyMaterial=(tmp_path / "id.pub").read_bytes())
    assert imported["KeyName"] == "mine" and len(imported["KeyFingerprint"].split(":")) == 16
    described = ec2.describe_key_pairs(IncludePublicKey=True)["KeyPairs"]
    assert [(k["KeyName"], k["KeyType"]) for k in described] == [("laptop", "ed25519"), ("mine", "rsa")]
    assert described[1]["PublicKey"].split()[:2] == (tmp_path / "id.pub").read_text().split()[:2]
    with pytest.raises(ClientError) as duplicate:
        ec2.create_key_pair(KeyName="laptop")
    assert duplicate.value.response["Error"]["Code"] == "InvalidKeyPair.Duplicate"
    with pytest.raises(ClientError) as bad:
        ec2.import_key_pair(KeyName="bad", PublicKeyMaterial=b"not a key")
    assert bad.value.response["Error"]["Code"] == "InvalidKey.Format"
    ec2.delete_key_pair(KeyPairId=created["KeyPairId"])
    ec2.delete_key_pair(KeyName="mine")
    with pytest.raises(ClientError) as missing:
        ec2.describe_key_pairs(KeyNames=["laptop"])
    assert missing.value.response["Error"]["Code"] == "InvalidKeyPair.NotFound"
