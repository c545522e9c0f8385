"""Accounts with keys, organizations with nested OUs and AWS-form ARNs, regions."""

from __future__ import annotations

import pytest

from kiln.errors import AlreadyExists, InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT
from kiln.model.organizations import ORGANIZATION_ARN, OU_ARN, OU_ID, ROOT_ID
from kiln.services.accounts import accounts, organizations, regions
from kiln.services.accounts.organizations import OrganizationsError


def test_the_default_account_and_region_exist() -> None:
    assert [a["Id"] for a in accounts.list_accounts()] == [DEFAULT_ACCOUNT]
    assert [r["RegionName"] for r in regions.list_regions()] == ["local"]


def test_accounts_and_their_keys() -> None:
    dev = accounts.create_account("dev", account_id="210987654321")
    assert dev["Id"] == "210987654321" and dev["Name"] == "dev"
    generated = accounts.create_account("prod")
    assert len(generated["Id"]) == 12 and generated["Id"].isdigit()
    with pytest.raises(AlreadyExists):
        accounts.create_account("again", account_id="210987654321")
    with pytest.raises(InvalidInput) as caught:
        accounts.create_account("bad", account_id="12345")
    assert caught.value.location == "AccountId"
    key = accounts.create_access_key("210987654321")
    assert key["AccessKeyId"].startswith("AKIA") and len(key["AccessKeyId"]) == 20
    assert len(key["SecretAccessKey"]) == 40
    assert accounts.key_secret(key["AccessKeyId"]) == ("210987654321", key["SecretAccessKey"])
    assert [k["AccessKeyId"] for k in accounts.list_access_keys("210987654321")] == [key["AccessKeyId"]]
    assert "SecretAccessKey" not in accounts.list_access_keys("210987654321")[0]
    accounts.delete_access_key(key["AccessKeyId"])
    assert accounts.key_secret(key["AccessKeyId"]) is None
    with pytest.raises(NotFound) as missing:
        accounts.get_account("999999999999")
    assert missing.value.code == "AccountNotFoundException"


def test_caller_account(monkeypatch: pytest.MonkeyPatch) -> None:
    assert accounts.caller_account() == DEFAULT_ACCOUNT
    accounts.create_account("dev", account_id="210987654321")
    monkeypatch.setenv("KILN_ACCOUNT", "210987654321")
    assert accounts.caller_account() == "210987654321"
    assert accounts.caller_account("123456789012") == "123456789012"
    with pytest.raises(NotFound) as caught:
        accounts.caller_account("111111111111")
    assert caught.value.location == "--account"


def test_organization_ous_and_membership_follow_moves() -> None:
    for name, number in (("dev", "210987654321"), ("prod", "310987654321")):
        accounts.create_account(name, account_id=number)
    organization = organizations.create_organization(DEFAULT_ACCOUNT)["Organization"]
    assert ORGANIZATION_ARN.match(organization["Arn"])
    assert organization["Arn"] == f"arn:aws:organizations::{DEFAULT_ACCOUNT}:organization/{organization['Id']}"
    [root] = organizations.list_roots(DEFAULT_ACCOUNT)["Roots"]
    assert ROOT_ID.match(root["Id"])
    workloads = organizations.create_organizational_unit(DEFAULT_ACCOUNT, root["Id"], "workloads")
    web = organizations.create_organizational_unit(DEFAULT_ACCOUNT, workloads["OrganizationalUnit"]["Id"], "web")
    web_id, web_arn = web["OrganizationalUnit"]["Id"], web["OrganizationalUnit"]["Arn"]
    assert OU_ID.match(web_id) and web_id.startswith("ou-" + root["Id"].removeprefix("r-") + "-")
    assert OU_ARN.match(web_arn) and web_arn.endswith(f"ou/{organization['Id']}/{web_id}")
    with pytest.raises(OrganizationsError) as duplicate:
        organizations.create_organizational_unit(DEFAULT_ACCOUNT, root["Id"], "workloads")
    assert duplicate.value.code == "DuplicateOrganizationalUnitException"

    assert organizations.membership("210987654321") == (None, [])
    joined = organizations.add_account(DEFAULT_ACCOUNT, "210987654321")
    assert joined["JoinedMethod"] == "INVITED"
    assert joined["Arn"] == f"arn:aws:organizations::{DEFAULT_ACCOUNT}:account/{organization['Id']}/210987654321"
    assert organizations.membership("210987654321") == (organization["Arn"], [])
    organizations.move_account(DEFAULT_ACCOUNT, "210987654321", web_id)
    assert organizations.membership("210987654321") == (
        organization["Arn"], [web_arn, workloads["OrganizationalUnit"]["Arn"]]
    )
    organizations.move_account(DEFAULT_ACCOUNT, "210987654321", root["Id"])
    assert organizations.membership("210987654321") == (organization["Arn"], [])

    with pytest.raises(OrganizationsError) as not_member:
        organizations.move_account(DEFAULT_ACCOUNT, "310987654321", web_id)
    assert not_member.value.code == "AccountNotFoundException"
    with pytest.raises(OrganizationsError) as not_manager:
        organizations.create_organizational_unit("210987654321", root["Id"], "sneaky")
    assert not_manager.value.code == "AccessDeniedException"
    with pytest.raises(OrganizationsError) as bad_parent:
        organizations.move_account(DEFAULT_ACCOUNT, "210987654321", "ou-zzzz-aaaaaaaa")
    assert bad_parent.value.code == "DestinationParentNotFoundException"
    with pytest.raises(OrganizationsError) as leaving:
        organizations.remove_account(DEFAULT_ACCOUNT, DEFAULT_ACCOUNT)
    assert leaving.value.code == "MasterCannotLeaveOrganizationException"
    organizations.remove_account(DEFAULT_ACCOUNT, "210987654321")
    assert organizations.membership("210987654321") == (None, [])
    with pytest.raises(OrganizationsError) as outside:
        organizations.describe_organization("310987654321")
    assert outside.value.code == "AWSOrganizationsNotInUseException"


def test_regions() -> None:
    created = regions.create_region("eu-west-1")
    assert created["RegionName"] == "eu-west-1"
    assert [r["RegionName"] for r in regions.list_regions()] == ["eu-west-1", "local"]
    for bad in ("Europe", "eu_west_1", "../x"):
        with pytest.raises(InvalidInput):
            regions.create_region(bad)
    with pytest.raises(AlreadyExists):
        regions.create_region("eu-west-1")
    assert regions.require_region("eu-west-1") == "eu-west-1"
    with pytest.raises(NotFound) as caught:
        regions.require_region("us-east-1")
    assert caught.value.hint == "kiln region create us-east-1"
