"""``kiln account``, ``kiln org`` and ``kiln region``: JSON complete, tables that never cut an id or ARN,
the secret of a key printed once, and the caller named by ``--account`` / ``KILN_ACCOUNT``."""

from __future__ import annotations

import json

import pytest

from kiln.home import DEFAULT_ACCOUNT
from kiln.model.organizations import ORGANIZATION_ARN, OU_ARN

PEER = "210987654321"


@pytest.fixture
def kiln(kiln):
    """The shared in-process ``kiln`` fixture, asserting the exit code (0 unless ``code=``): what the command
    printed on stdout, or on stderr when it was to fail."""

    def run(*args: str, code: int = 0) -> str:
        result = kiln(*args)
        assert result.exit_code == code, result.stderr
        return result.stdout if code == 0 else result.stderr

    return run


@pytest.fixture
def as_json(kiln):
    return lambda *args: json.loads(kiln(*args, "--output", "json"))



def test_accounts_and_keys(kiln, as_json) -> None:
    assert kiln("account", "create", "peer", "--account-id", PEER, "--email", "peer@example.com") == f"{PEER}\n"
    created = as_json("account", "create", "publisher", "--image-owner-alias", "amazon")["Account"]
    assert created["ImageOwnerAlias"] == "amazon" and len(created["Id"]) == 12
    listed = as_json("account", "list")["Accounts"]
    assert [a["Id"] for a in listed] == sorted([DEFAULT_ACCOUNT, PEER, created["Id"]])
    assert as_json("account", "get", PEER)["Account"]["Email"] == "peer@example.com"
    assert "account 999999999999 does not exist" in kiln("account", "get", "999999999999", code=1)
    assert "ImageOwnerAlias" in kiln("account", "create", "x", "--image-owner-alias", "google", code=1)

    text = kiln("account", "keys", "create", "--account", PEER)
    key_id = text.split("AccessKeyId: ")[1].split()[0]
    secret = text.split("SecretAccessKey: ")[1].split()[0]
    assert len(secret) == 40
    assert key_id in kiln("account", "keys", "list", "--account", PEER)
    listed_keys = as_json("account", "keys", "list", "--account", PEER)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed_keys] == [key_id]
    assert secret not in json.dumps(listed_keys)
    assert secret not in kiln("account", "keys", "list", "--account", PEER)
    assert as_json("account", "keys", "list")["AccessKeyMetadata"] == []  # the default account's
    # Another account's key does not exist for the caller.
    assert "does not exist" in kiln("account", "keys", "delete", key_id, code=1)
    assert kiln("account", "keys", "delete", key_id, "--account", PEER) == f"deleted {key_id}\n"
    assert as_json("account", "keys", "list", "--account", PEER)["AccessKeyMetadata"] == []

    # The caller: --account, else KILN_ACCOUNT; an unknown account is refused before anything runs.
    err = kiln("account", "keys", "list", "--account", "999999999999", code=1)
    assert err.startswith("error: --account: account 999999999999 does not exist")
    err = kiln("account", "keys", "list", "--account", "12", code=1)
    assert "12-digit" in err


def test_organizations_on_the_cli(kiln, as_json, monkeypatch: pytest.MonkeyPatch) -> None:
    kiln("account", "create", "peer", "--account-id", PEER)
    organization_arn = kiln("org", "create").strip()
    assert ORGANIZATION_ARN.match(organization_arn)
    organization = as_json("org", "describe")["Organization"]
    assert organization["Arn"] == organization_arn and organization["MasterAccountId"] == DEFAULT_ACCOUNT
    [root] = as_json("org", "list-roots")["Roots"]
    workloads = as_json("org", "create-ou", "workloads")["OrganizationalUnit"]
    web = as_json("org", "create-ou", "web", "--parent-id", workloads["Id"])["OrganizationalUnit"]
    assert OU_ARN.match(web["Arn"])
    assert [u["Id"] for u in as_json("org", "list-ous")["OrganizationalUnits"]] == [workloads["Id"]]
    assert [u["Name"] for u in as_json("org", "list-ous", "--parent-id", workloads["Id"])[
        "OrganizationalUnits"]] == ["web"]

    # Tables never cut an id or ARN, whatever the terminal width.
    monkeypatch.setenv("COLUMNS", "40")
    text = kiln("org", "list-ous", "--parent-id", workloads["Id"])
    assert web["Arn"] in text and web["Id"] in text
    assert root["Arn"] in kiln("org", "list-roots")

    joined = as_json("org", "add-account", PEER)["Account"]
    assert joined["JoinedMethod"] == "INVITED" and joined["Arn"].endswith(f"/{PEER}")
    moved = as_json("org", "move-account", PEER, "--destination-parent-id", web["Id"])
    assert moved == {"AccountId": PEER, "DestinationParentId": web["Id"]}
    err = kiln("org", "move-account", PEER, "--destination-parent-id", root["Id"],
               "--source-parent-id", workloads["Id"], code=1)
    assert f"{PEER} is not under {workloads['Id']}" in err
    # Only the management account manages; a member sees the organization.
    assert "not the management account" in kiln("org", "create-ou", "x", "--account", PEER, code=1)
    assert as_json("org", "describe", "--account", PEER)["Organization"]["Id"] == organization["Id"]
    assert kiln("org", "remove-account", PEER) == f"{PEER} removed\n"
    assert "not a member" in kiln("org", "describe", "--account", PEER, code=1)


def test_regions_on_the_cli(kiln, as_json) -> None:
    assert kiln("region", "create", "eu-west-1") == "eu-west-1\n"
    regions = as_json("region", "list")["Regions"]
    assert [r["RegionName"] for r in regions] == ["eu-west-1", "local"]
    assert all(r["Endpoint"].endswith(f"/regions/{r['RegionName']}") for r in regions)
    assert "already exists" in kiln("region", "create", "eu-west-1", code=1)
    assert "not a region name" in kiln("region", "create", "Mars", code=1)
