"""STS (query protocol) and Organizations (json 1.1) against ``kiln serve``, as each account's key."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server, raw
from tests.api.wire import STS_NS


def _code(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _account(name: str, account_id: str) -> dict[str, str]:
    from kiln.services.accounts.accounts import create_access_key, create_account

    create_account(name, account_id=account_id)
    return create_access_key(account_id)


def test_get_caller_identity(server: Server) -> None:
    assert {k: v for k, v in server.client("sts").get_caller_identity().items() if k != "ResponseMetadata"} == {
        "UserId": "123456789012", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:root"}
    other = _account("build", "210987654321")
    assert server.client("sts", key=other).get_caller_identity()["Account"] == "210987654321"
    status, headers, body = raw(server, "POST", "/", b"Action=GetCallerIdentity&Version=2011-06-15",
                                {"Content-Type": "application/x-www-form-urlencoded"}, service="sts",
                                region="us-east-1")
    assert status == 200
    root = ET.fromstring(body)
    assert root.tag == f"{{{STS_NS}}}GetCallerIdentityResponse"
    assert [child.tag for child in root] == [f"{{{STS_NS}}}GetCallerIdentityResult", f"{{{STS_NS}}}ResponseMetadata"]
    assert root.findtext(f"{{{STS_NS}}}GetCallerIdentityResult/{{{STS_NS}}}Account") == "123456789012"
    assert root.findtext(f"{{{STS_NS}}}ResponseMetadata/{{{STS_NS}}}RequestId") == headers["x-amzn-requestid"]


def test_an_organization_with_ous_and_accounts(server: Server) -> None:
    from kiln.services.accounts.organizations import add_account

    org = server.client("organizations")
    assert _code(org.describe_organization) == ("AWSOrganizationsNotInUseException", 400)
    organization = org.create_organization(FeatureSet="ALL")["Organization"]
    assert organization["Id"].startswith("o-") and organization["MasterAccountId"] == "123456789012"
    assert organization["Arn"] == f"arn:aws:organizations::123456789012:organization/{organization['Id']}"
    assert _code(org.create_organization) == ("AlreadyInOrganizationException", 400)
    [root] = org.list_roots()["Roots"]
    assert root["Id"].startswith("r-")

    units = [org.create_organizational_unit(ParentId=root["Id"], Name=name)["OrganizationalUnit"]
             for name in ("dev", "prod", "test")]
    assert _code(org.create_organizational_unit, ParentId=root["Id"], Name="prod") == (
        "DuplicateOrganizationalUnitException", 400)
    pages = list(org.get_paginator("list_organizational_units_for_parent").paginate(
        ParentId=root["Id"], PaginationConfig={"PageSize": 1}))
    assert [[u["Name"] for u in p["OrganizationalUnits"]] for p in pages] == [["dev"], ["prod"], ["test"]]

    member = _account("web", "210987654321")
    outsider = _account("stranger", "333333333333")
    add_account("123456789012", "210987654321")
    _account("db", "444444444444")
    add_account("123456789012", "444444444444")
    pages = list(org.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 1}))
    assert [len(p["Accounts"]) for p in pages] == [1, 1, 1]
    accounts = {a["Id"]: a for p in pages for a in p["Accounts"]}
    assert sorted(accounts) == ["123456789012", "210987654321", "444444444444"]
    assert isinstance(accounts["210987654321"]["JoinedTimestamp"], datetime)
    assert accounts["210987654321"]["JoinedMethod"] == "INVITED"
    assert _code(org.list_accounts, MaxResults=21)[0] == "InvalidInputException"

    prod = units[1]["Id"]
    org.move_account(AccountId="210987654321", SourceParentId=root["Id"], DestinationParentId=prod)
    assert _code(org.move_account, AccountId="210987654321", SourceParentId=root["Id"],
                 DestinationParentId=units[0]["Id"]) == ("SourceParentNotFoundException", 400)
    assert _code(org.move_account, AccountId="333333333333", SourceParentId=root["Id"],
                 DestinationParentId=prod) == ("AccountNotFoundException", 400)

    as_member = server.client("organizations", key=member)
    assert as_member.describe_organization()["Organization"]["Id"] == organization["Id"]
    assert _code(as_member.list_accounts) == ("AccessDeniedException", 400)
    assert _code(as_member.create_organizational_unit, ParentId=root["Id"], Name="mine") == (
        "AccessDeniedException", 400)
    assert _code(server.client("organizations", key=outsider).describe_organization) == (
        "AWSOrganizationsNotInUseException", 400)


def test_json_wire_format(server: Server) -> None:
    headers = {"Content-Type": "application/x-amz-json-1.1",
               "X-Amz-Target": "AWSOrganizationsV20161128.CreateOrganization"}
    status, answer_headers, body = raw(server, "POST", "/", b"{}", headers, service="organizations",
                                       region="us-east-1")
    assert status == 200 and answer_headers["content-type"] == "application/x-amz-json-1.1"
    assert set(json.loads(body)["Organization"]) == {"Id", "Arn", "FeatureSet", "MasterAccountArn",
                                                     "MasterAccountId", "AvailablePolicyTypes"}
    status, _, body = raw(server, "POST", "/", b'{"FeatureSet": "SOME"}', headers, service="organizations",
                          region="us-east-1")
    assert status == 400 and json.loads(body) == {"__type": "InvalidInputException", "message": json.loads(body)[
        "message"], "Reason": "INVALID_ENUM"}
