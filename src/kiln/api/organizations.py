"""AWS Organizations on the wire (the ``json`` 1.1 protocol), as the caller's account: each operation a
call of ``services/accounts/organizations``. Organizations is global: any signing region is taken."""

from __future__ import annotations

from typing import Any

from kiln.api import json_protocol
from kiln.api.errors import ApiError, Dialect
from kiln.api.paging import Limits
from kiln.api.protocol import Handler, Service
from kiln.services.accounts import organizations as org_service


def _move_account(p: dict[str, Any], caller: str) -> dict[str, Any]:
    org_service.move_account(caller, p["AccountId"], p["DestinationParentId"],
                                  source_parent_id=p["SourceParentId"])
    return {}


def _list_accounts(p: dict[str, Any], caller: str) -> dict[str, Any]:
    from kiln.services.organization_accounts import list_accounts

    return list_accounts(caller)


def _remove_account(p: dict[str, Any], caller: str) -> dict[str, Any]:
    org_service.remove_account(caller, p["AccountId"])
    return {}


def _create_organization(p: dict[str, Any], caller: str) -> dict[str, Any]:
    if p.get("FeatureSet", "ALL") != "ALL":
        raise ApiError("InvalidInputException", "kiln's organizations have all features (FeatureSet ALL)",
                       fields={"Reason": "INVALID_ENUM"})
    return dict(org_service.create_organization(caller))


_BY_ACCOUNT: dict[str, Any] = {
    "CreateOrganization": _create_organization,
    "DescribeOrganization": lambda p, caller: org_service.describe_organization(caller),
    "ListRoots": lambda p, caller: org_service.list_roots(caller),
    "CreateOrganizationalUnit": lambda p, caller: org_service.create_organizational_unit(
        caller, p["ParentId"], p["Name"]
    ),
    "ListOrganizationalUnitsForParent": lambda p, caller: org_service.list_organizational_units(
        caller, p["ParentId"]
    ),
    "MoveAccount": _move_account,
    "ListAccounts": _list_accounts,
    "RemoveAccountFromOrganization": _remove_account,
}



def _as_caller(call: Any) -> Handler:
    return lambda p, c: dict(call(p, c.account_id))


HANDLERS: dict[str, Handler] = {name: _as_caller(call) for name, call in _BY_ACCOUNT.items()}

DIALECT = Dialect(
    missing="InvalidInputException",
    invalid="InvalidInputException",
    unknown_parameter="SerializationException",
    unknown_operation="UnknownOperationException",
    unsupported="UnsupportedAPIEndpointException",
    malformed="SerializationException",
    bad_token="InvalidInputException",
    bad_limit="InvalidInputException",
    reasons=True,
    flat=True,
    kiln_codes={
        "InvalidParameterValueException": "InvalidInputException",
        "ForbiddenException": "AccessDeniedException",
        "ResourceNotFoundException": "TargetNotFoundException",
    },
    statuses={"ServiceException": 500},
)

SERVICE = Service("organizations", json_protocol, DIALECT, Limits(low=1, high=20, default=20), HANDLERS,
                  regional=False)
