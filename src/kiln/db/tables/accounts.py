"""Accounts and their access keys, organizations with their OU tree, and regions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class AccountRow(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    email: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # DescribeImages' ``ImageOwnerAlias`` of the account's AMIs (``amazon`` …), None for ordinary accounts.
    image_owner_alias: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Membership: the organization and the parent (its root ``r-…`` or an OU ``ou-…``) it sits under.
    organization_id: Mapped[str | None] = mapped_column(String(34), nullable=True, index=True)
    parent_id: Mapped[str | None] = mapped_column(String(68), nullable=True)
    joined_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccessKeyRow(Base):
    __tablename__ = "access_keys"

    access_key_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    # The secret itself: SigV4 verification recomputes the signature with it, as AWS does.
    secret_access_key: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrganizationRow(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(34), primary_key=True)
    management_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), unique=True)
    root_id: Mapped[str] = mapped_column(String(34), unique=True)
    feature_set: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrganizationalUnitRow(Base):
    __tablename__ = "organizational_units"

    id: Mapped[str] = mapped_column(String(68), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    parent_id: Mapped[str] = mapped_column(String(68), index=True)  # the root or another OU
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RegionRow(Base):
    __tablename__ = "regions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
