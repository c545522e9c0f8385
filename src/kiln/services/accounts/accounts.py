"""Accounts and their access keys; which account a caller acts as.

Every resource is owned by an account (12 digits). ``123456789012`` (kiln's default) exists from the
first start. A caller acts as the account named by ``--account`` / ``KILN_ACCOUNT``, or — on the API —
the account of the access key that signed the request.
"""

from __future__ import annotations

import os
import secrets
import string
from typing import Any

from sqlalchemy import select

from kiln.db.base import utcnow
from kiln.db.engine import session
from kiln.db.tables.accounts import AccessKeyRow, AccountRow, OrganizationRow
from kiln.errors import AlreadyExists, InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT
from kiln.model.organizations import ACCOUNT_ID, account_arn
from kiln.model.shapes import format_date
from kiln.model.sharing import OWNER_ALIASES

DEFAULT_ACCOUNT_NAME = "default"
KEY_ALPHABET = string.ascii_uppercase + "234567"  # AWS access key ids use base32 letters and digits
SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


class AccountNotFound(NotFound):
    code = "AccountNotFoundException"


def _check_id(account_id: str, field: str = "AccountId") -> str:
    if not ACCOUNT_ID.match(account_id):
        raise InvalidInput(f"{account_id!r} is not a 12-digit account id", location=field)
    return account_id


def _shape(row: AccountRow, organization: OrganizationRow | None) -> dict[str, Any]:
    """The Account shape; ``organization`` is the one ``row`` belongs to (read in the caller's unit of work)."""
    shape: dict[str, Any] = {"Id": row.id, "Name": row.name, "Status": "ACTIVE", "State": "ACTIVE"}
    if row.email:
        shape["Email"] = row.email
    if row.image_owner_alias:
        shape["ImageOwnerAlias"] = row.image_owner_alias
    if organization is not None:
        shape["Arn"] = account_arn(organization.management_account_id, organization.id, row.id)
        shape["JoinedMethod"] = row.joined_method
        shape["JoinedTimestamp"] = format_date(row.joined_at) if row.joined_at else None
    shape["CreatedTimestamp"] = format_date(row.created_at)
    return {key: value for key, value in shape.items() if value is not None}


def ensure_default_account() -> None:
    """The default account exists (a start-up step)."""
    with session() as db:
        if db.get(AccountRow, DEFAULT_ACCOUNT) is None:
            db.add(AccountRow(id=DEFAULT_ACCOUNT, name=DEFAULT_ACCOUNT_NAME, created_at=utcnow()))


def create_account(
    name: str, *, account_id: str | None = None, email: str | None = None, image_owner_alias: str | None = None
) -> dict[str, Any]:
    """A new account: the given id, or 12 random digits not yet taken. ``image_owner_alias``
    (``amazon``, ``aws-marketplace``, ``aws-backup-vault``) makes it a managed publisher: its AMIs
    carry the alias (DescribeImages ``ImageOwnerAlias``, ``Owners=amazon``)."""
    if not name or len(name) > 50:
        raise InvalidInput("an account name is 1 to 50 characters", location="Name")
    if image_owner_alias is not None and image_owner_alias not in OWNER_ALIASES:
        raise InvalidInput(f"an image owner alias is one of {', '.join(OWNER_ALIASES)}", location="ImageOwnerAlias")
    with session() as db:
        if account_id is None:
            account_id = next(
                candidate
                for candidate in (f"{secrets.randbelow(10**12):012d}" for _ in range(100))
                if db.get(AccountRow, candidate) is None
            )
        _check_id(account_id)
        if db.get(AccountRow, account_id) is not None:
            raise AlreadyExists(f"account {account_id} already exists", location="AccountId")
        row = AccountRow(
            id=account_id, name=name, email=email, image_owner_alias=image_owner_alias, created_at=utcnow()
        )
        db.add(row)
    return _shape(row, None)  # a new account belongs to no organization yet


def get_account(account_id: str) -> dict[str, Any]:
    _check_id(account_id)
    with session() as db:
        row = db.get(AccountRow, account_id)
        if row is None:
            raise AccountNotFound(f"account {account_id} does not exist", location="AccountId",
                                  hint="kiln account list shows the accounts")
        organization = db.get(OrganizationRow, row.organization_id) if row.organization_id else None
    return _shape(row, organization)


def list_accounts() -> list[dict[str, Any]]:
    with session() as db:
        rows = list(db.scalars(select(AccountRow).order_by(AccountRow.id)))
        organizations = {o.id: o for o in db.scalars(select(OrganizationRow))}
    return [_shape(row, organizations.get(row.organization_id or "")) for row in rows]


def account_exists(account_id: str) -> bool:
    with session() as db:
        return db.get(AccountRow, account_id) is not None


def create_access_key(account_id: str) -> dict[str, Any]:
    """A new key pair for the account; the secret is shown in this answer only (as IAM does)."""
    get_account(account_id)
    row = AccessKeyRow(
        access_key_id="AKIA" + "".join(secrets.choice(KEY_ALPHABET) for _ in range(16)),
        account_id=account_id,
        secret_access_key="".join(secrets.choice(SECRET_ALPHABET) for _ in range(40)),
        status="Active",
        created_at=utcnow(),
    )
    with session() as db:
        db.add(row)
    return {
        "AccessKeyId": row.access_key_id,
        "SecretAccessKey": row.secret_access_key,
        "Status": row.status,
        "AccountId": account_id,
        "CreateDate": format_date(row.created_at),
    }


def list_access_keys(account_id: str) -> list[dict[str, Any]]:
    get_account(account_id)
    with session() as db:
        rows = list(db.scalars(select(AccessKeyRow).where(AccessKeyRow.account_id == account_id)
                               .order_by(AccessKeyRow.created_at)))
    return [{"AccessKeyId": r.access_key_id, "Status": r.status, "CreateDate": format_date(r.created_at)}
            for r in rows]


def delete_access_key(access_key_id: str, account_id: str | None = None) -> None:
    """Delete a key (of ``account_id`` only, when given: another account's key does not exist for it)."""
    with session() as db:
        row = db.get(AccessKeyRow, access_key_id)
        if row is None or account_id not in (None, row.account_id):
            raise NotFound(f"access key {access_key_id} does not exist", location="AccessKeyId")
        db.delete(row)


def key_secret(access_key_id: str) -> tuple[str, str] | None:
    """(account id, secret) of an active access key, for signature checks; None when unknown."""
    with session() as db:
        row = db.get(AccessKeyRow, access_key_id)
        if row is None or row.status != "Active":
            return None
        return row.account_id, row.secret_access_key


def caller_account(explicit: str | None = None) -> str:
    """The account a local caller acts as: ``explicit`` (``--account``), ``KILN_ACCOUNT``, or the
    default; it must exist."""
    account_id = explicit or os.environ.get("KILN_ACCOUNT") or DEFAULT_ACCOUNT
    _check_id(account_id, "--account" if explicit else "KILN_ACCOUNT")
    if account_id != DEFAULT_ACCOUNT and not account_exists(account_id):
        raise AccountNotFound(f"account {account_id} does not exist", location="--account",
                              hint=f"kiln account create --account-id {account_id} NAME")
    return account_id


def first_start_key() -> dict[str, Any] | None:
    """With no access key at all yet, one for the default account (its secret is shown only now)."""
    with session() as db:
        if db.scalars(select(AccessKeyRow.access_key_id).limit(1)).first() is not None:
            return None
    return create_access_key(DEFAULT_ACCOUNT)
