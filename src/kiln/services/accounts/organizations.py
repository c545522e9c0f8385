"""Organizations: a management account, a root, OUs nested under it, member accounts moved between them.

Shapes and error codes are AWS Organizations' (botocore ``organizations``). ``membership`` answers the
question sharing asks: which organization and which OUs (the account's own and every ancestor) an
account belongs to *now* — so moving an account out of an OU changes what it may launch at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.accounts import AccountRow, OrganizationalUnitRow, OrganizationRow
from kiln.errors import KilnError
from kiln.model.organizations import (
    OU_ID,
    ROOT_ID,
    account_arn,
    new_organization_id,
    new_ou_id,
    new_root_id,
    organization_arn,
    ou_arn,
    root_arn,
)
from kiln.services.accounts.accounts import get_account


class OrganizationsError(KilnError):
    """An AWS Organizations error; ``code`` is the exception's name in the botocore model."""

    http_status = 400

    def __init__(self, code: str, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.code = code


def _organization_of(db: Any, account_id: str) -> OrganizationRow:
    account = db.get(AccountRow, account_id)
    organization = db.get(OrganizationRow, account.organization_id) if account and account.organization_id else None
    if organization is None:
        raise OrganizationsError("AWSOrganizationsNotInUseException",
                                 f"account {account_id} is not a member of an organization",
                                 hint="kiln org create makes one with this account as its management account")
    return organization


def _organization_shape(organization: OrganizationRow) -> dict[str, Any]:
    management = organization.management_account_id
    return {
        "Id": organization.id,
        "Arn": organization_arn(management, organization.id),
        "FeatureSet": organization.feature_set,
        "MasterAccountArn": account_arn(management, organization.id, management),
        "MasterAccountId": management,
        "AvailablePolicyTypes": [],
    }


def _require_management(organization: OrganizationRow, caller: str) -> None:
    if organization.management_account_id != caller:
        raise OrganizationsError("AccessDeniedException",
                                 f"account {caller} is not the management account of {organization.id}")


def create_organization(management_account: str) -> dict[str, Any]:
    """CreateOrganization: the caller becomes the management account, placed under the new root."""
    get_account(management_account)
    now = utcnow()
    with session() as db:
        account = db.get(AccountRow, management_account)
        if account.organization_id is not None:
            raise OrganizationsError("AlreadyInOrganizationException",
                                     f"account {management_account} is already in organization "
                                     f"{account.organization_id}")
        organization = OrganizationRow(id=new_organization_id(), management_account_id=management_account,
                                       root_id=new_root_id(), feature_set="ALL", created_at=now)
        db.add(organization)
        db.flush()
        account.organization_id, account.parent_id = organization.id, organization.root_id
        account.joined_method, account.joined_at = "CREATED", now
        return {"Organization": _organization_shape(organization)}


def describe_organization(caller: str) -> dict[str, Any]:
    with session() as db:
        return {"Organization": _organization_shape(_organization_of(db, caller))}


def list_roots(caller: str) -> dict[str, Any]:
    with session() as db:
        organization = _organization_of(db, caller)
        return {"Roots": [{
            "Id": organization.root_id,
            "Arn": root_arn(organization.management_account_id, organization.id, organization.root_id),
            "Name": "Root",
            "PolicyTypes": [],
        }]}


def _ou_shape(organization: OrganizationRow, row: OrganizationalUnitRow) -> dict[str, Any]:
    return {"Id": row.id, "Arn": ou_arn(organization.management_account_id, organization.id, row.id),
            "Name": row.name}


def _check_parent(db: Any, organization: OrganizationRow, parent_id: str, *, code: str = "ParentNotFoundException",
                  field: str = "ParentId") -> None:
    if parent_id == organization.root_id:
        return
    if not OU_ID.match(parent_id) and not ROOT_ID.match(parent_id):
        raise OrganizationsError("InvalidInputException", f"{parent_id!r} is not a root or OU id", location=field)
    unit = db.get(OrganizationalUnitRow, parent_id)
    if unit is None or unit.organization_id != organization.id:
        raise OrganizationsError(code, f"{parent_id} is not a root or OU of {organization.id}", location=field)


def create_organizational_unit(caller: str, parent_id: str, name: str) -> dict[str, Any]:
    if not name or len(name) > 128:
        raise OrganizationsError("InvalidInputException", "an OU name is 1 to 128 characters", location="Name")
    with session() as db:
        organization = _organization_of(db, caller)
        _require_management(organization, caller)
        _check_parent(db, organization, parent_id)
        siblings = db.scalars(select(OrganizationalUnitRow.name).where(OrganizationalUnitRow.parent_id == parent_id))
        if name in set(siblings):
            raise OrganizationsError("DuplicateOrganizationalUnitException",
                                     f"an OU named {name!r} already exists under {parent_id}", location="Name")
        row = OrganizationalUnitRow(id=new_ou_id(organization.root_id), organization_id=organization.id,
                                    parent_id=parent_id, name=name, created_at=utcnow())
        db.add(row)
        return {"OrganizationalUnit": _ou_shape(organization, row)}


def list_organizational_units(caller: str, parent_id: str) -> dict[str, Any]:
    with session() as db:
        organization = _organization_of(db, caller)
        _check_parent(db, organization, parent_id)
        rows = db.scalars(select(OrganizationalUnitRow).where(OrganizationalUnitRow.parent_id == parent_id)
                          .order_by(OrganizationalUnitRow.name))
        return {"OrganizationalUnits": [_ou_shape(organization, row) for row in rows]}


def add_account(caller: str, account_id: str) -> dict[str, Any]:
    """An existing account joins the caller's organization under its root (an invitation accepted)."""
    get_account(account_id)
    with session() as db:
        organization = _organization_of(db, caller)
        _require_management(organization, caller)
        account = db.get(AccountRow, account_id)
        if account.organization_id is not None:
            raise OrganizationsError("AlreadyInOrganizationException",
                                     f"account {account_id} is already in organization {account.organization_id}")
        account.organization_id, account.parent_id = organization.id, organization.root_id
        account.joined_method, account.joined_at = "INVITED", utcnow()
    return get_account(account_id)


def move_account(caller: str, account_id: str, destination_parent_id: str,
                 source_parent_id: str | None = None) -> None:
    """MoveAccount: takes effect for every permission check from the next one on."""
    with session() as db:
        organization = _organization_of(db, caller)
        _require_management(organization, caller)
        account = db.get(AccountRow, account_id)
        if account is None or account.organization_id != organization.id:
            raise OrganizationsError("AccountNotFoundException",
                                     f"account {account_id} is not in organization {organization.id}",
                                     location="AccountId")
        if source_parent_id is not None and source_parent_id != account.parent_id:
            raise OrganizationsError("SourceParentNotFoundException",
                                     f"account {account_id} is not under {source_parent_id}", location="SourceParentId")
        _check_parent(db, organization, destination_parent_id, code="DestinationParentNotFoundException",
                      field="DestinationParentId")
        account.parent_id = destination_parent_id


def remove_account(caller: str, account_id: str) -> None:
    """RemoveAccountFromOrganization (the management account cannot leave)."""
    with session() as db:
        organization = _organization_of(db, caller)
        _require_management(organization, caller)
        account = db.get(AccountRow, account_id)
        if account is None or account.organization_id != organization.id:
            raise OrganizationsError("AccountNotFoundException",
                                     f"account {account_id} is not in organization {organization.id}")
        if account_id == organization.management_account_id:
            raise OrganizationsError("MasterCannotLeaveOrganizationException",
                                     "the management account cannot leave its organization")
        account.organization_id = account.parent_id = account.joined_method = None
        account.joined_at = None


def membership(account_id: str) -> tuple[str | None, list[str]]:
    """(organization ARN, ARNs of the OU the account is in and of every OU above it), as of now."""
    with session() as db:
        account = db.get(AccountRow, account_id)
        if account is None or account.organization_id is None:
            return None, []
        organization = db.get(OrganizationRow, account.organization_id)
        management = organization.management_account_id
        units: list[str] = []
        parent = account.parent_id
        while parent and parent != organization.root_id:
            unit = db.get(OrganizationalUnitRow, parent)
            if unit is None:
                break
            units.append(ou_arn(management, organization.id, unit.id))
            parent = unit.parent_id
        return organization_arn(management, organization.id), units
