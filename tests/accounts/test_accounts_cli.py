"""``kiln account``, ``kiln org`` and ``kiln region``: JSON complete, tables that never cut an id or ARN,
the secret of a key printed once, and the caller named by ``--account`` / ``KILN_ACCOUNT``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kiln.cli.main import run
from kiln.home import DEFAULT_ACCOUNT
from kiln.model.organizations import ORGANIZATION_ARN, OU_ARN

PEER = "210987654321"


def kiln(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> str:
    assert run(list(args)) == code
    captured = capsys.readouterr()
    return captured.out if code == 0 else captured.err


def as_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    return json.loads(kiln(capsys, *args, "--output", "json"))


def test_accounts_and_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert kiln(capsys, "account", "create", "peer", "--account-id", PEER, "--email", "peer@example.com") == f"{PEER}\n"
    created = as_json(capsys, "account", "create", "publisher", "--image-owner-alias", "amazon")["Account"]
    assert created["ImageOwnerAlias"] == "amazon" and len(created["Id"]) == 12
    listed = as_json(capsys, "account", "list")["Accounts"]
    assert [a["Id"] for a in listed] == sorted([DEFAULT_ACCOUNT, PEER, created["Id"]])
    assert as_json(capsys, "account", "get", PEER)["Account"]["Email"] == "peer@example.com"
    assert "account 999999999999 does not exist" in kiln(capsys, "account", "get", "999999999999", code=1)
    assert "ImageOwnerAlias" in kiln(capsys, "account", "create", "x", "--image-owner-alias", "google", code=1)

    text = kiln(capsys, "account", "keys", "create", "--account", PEER)
    key_id = text.split("AccessKeyId: ")[1].split()[0]
    secret = text.split("SecretAccessKey: ")[1].split()[0]
    assert len(secret) == 40
    assert key_id in kiln(capsys, "account", "keys", "list", "--account", PEER)
    listed_keys = as_json(capsys, "account", "keys", "list", "--account", PEER)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed_keys] == [key_id]
    assert secret not in json.dumps(listed_keys)
    assert secret not in kiln(capsys, "account", "keys", "list", "--account", PEER)
    assert as_json(capsys, "account", "keys", "list")["AccessKeyMetadata"] == []  # the default account's
    # Another account's key does not exist for the caller.
    assert "does not exist" in kiln(capsys, "account", "keys", "delete", key_id, code=1)
    assert kiln(capsys, "account", "keys", "delete", key_id, "--account", PEER) == f"deleted {key_id}\n"
    assert as_json(capsys, "account", "keys", "list", "--account", PEER)["AccessKeyMetadata"] == []

    # The caller: --account, else KILN_ACCOUNT; an unknown account is refused before anything runs.
    err = kiln(capsys, "account", "keys", "list", "--account", "999999999999", code=1)
    assert err.startswith("error: --account: account 999999999999 does not exist")
    err = kiln(capsys, "account", "keys", "list", "--account", "12", code=1)
    assert "12-digit" in err


def test_organizations_on_the_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    kiln(capsys, "account", "create", "peer", "--account-id", PEER)
    organization_arn = kiln(capsys, "org", "create").strip()
    assert ORGANIZATION_ARN.match(organization_arn)
    organization = as_json(capsys, "org", "describe")["Organization"]
    assert organization["Arn"] == organization_arn and organization["MasterAccountId"] == DEFAULT_ACCOUNT
    [root] = as_json(capsys, "org", "list-roots")["Roots"]
    workloads = as_json(capsys, "org", "create-ou", "workloads")["OrganizationalUnit"]
    web = as_json(capsys, "org", "create-ou", "web", "--parent-id", workloads["Id"])["OrganizationalUnit"]
    assert OU_ARN.match(web["Arn"])
    assert [u["Id"] for u in as_json(capsys, "org", "list-ous")["OrganizationalUnits"]] == [workloads["Id"]]
    assert [u["Name"] for u in as_json(capsys, "org", "list-ous", "--parent-id", workloads["Id"])[
        "OrganizationalUnits"]] == ["web"]

    # Tables never cut an id or ARN, whatever the terminal width.
    monkeypatch.setenv("COLUMNS", "40")
    text = kiln(capsys, "org", "list-ous", "--parent-id", workloads["Id"])
    assert web["Arn"] in text and web["Id"] in text
    assert root["Arn"] in kiln(capsys, "org", "list-roots")

    joined = as_json(capsys, "org", "add-account", PEER)["Account"]
    assert joined["JoinedMethod"] == "INVITED" and joined["Arn"].endswith(f"/{PEER}")
    moved = as_json(capsys, "org", "move-account", PEER, "--destination-parent-id", web["Id"])
    assert moved == {"AccountId": PEER, "DestinationParentId": web["Id"]}
    err = kiln(capsys, "org", "move-account", PEER, "--destination-parent-id", root["Id"],
               "--source-parent-id", workloads["Id"], code=1)
    assert f"{PEER} is not under {workloads['Id']}" in err
    # Only the management account manages; a member sees the organization.
    assert "not the management account" in kiln(capsys, "org", "create-ou", "x", "--account", PEER, code=1)
    assert as_json(capsys, "org", "describe", "--account", PEER)["Organization"]["Id"] == organization["Id"]
    assert kiln(capsys, "org", "remove-account", PEER) == f"{PEER} removed\n"
    assert "not a member" in kiln(capsys, "org", "describe", "--account", PEER, code=1)


def test_regions_on_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert kiln(capsys, "region", "create", "eu-west-1") == "eu-west-1\n"
    regions = as_json(capsys, "region", "list")["Regions"]
    assert [r["RegionName"] for r in regions] == ["eu-west-1", "local"]
    assert all(r["Endpoint"].endswith(f"/regions/{r['RegionName']}") for r in regions)
    assert "already exists" in kiln(capsys, "region", "create", "eu-west-1", code=1)
    assert "not a region name" in kiln(capsys, "region", "create", "Mars", code=1)
