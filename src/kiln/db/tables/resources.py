"""Image Builder resources: components, image recipes, infrastructure and distribution configurations.

Each row keeps the full request body as JSON (what Get* answers from) plus indexed columns for
lookups. Components and recipes are immutable (one row per build version); infrastructure and
distribution configurations are updated in place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime

# Column blocks several resource tables share. SQLAlchemy puts a class's own columns before those of
# its mixins; ``sort_order`` keeps every table's columns in the order the migrations create them.
LEAD, VERSION, TRAIL = -2, -1, 1


class NamedResourceColumns:
    """The key of every named resource: row id, ARN, account and name."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True, sort_order=LEAD)
    arn: Mapped[str] = mapped_column(String(1024), unique=True, sort_order=LEAD)
    account: Mapped[str] = mapped_column(String(32), sort_order=LEAD)
    name: Mapped[str] = mapped_column(String(128), sort_order=LEAD)


class VersionedResourceColumns(NamedResourceColumns):
    """An immutable resource kept as one row per semantic version."""

    arn_name: Mapped[str] = mapped_column(String(128), sort_order=VERSION)
    version: Mapped[str] = mapped_column(String(64), sort_order=VERSION)
    major: Mapped[int] = mapped_column(Integer, sort_order=VERSION)
    minor: Mapped[int] = mapped_column(Integer, sort_order=VERSION)
    patch: Mapped[int] = mapped_column(Integer, sort_order=VERSION)


class CreationColumns:
    """The idempotency token of the Create request and the time of creation."""

    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True, sort_order=TRAIL)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime(), sort_order=TRAIL)


class UpdatedColumns(CreationColumns):
    """Creation columns of a resource updated in place, plus the time of its last update."""

    date_updated: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, sort_order=TRAIL + 1)


class ConfigurationColumns(NamedResourceColumns, UpdatedColumns):
    """A configuration updated in place: its request body and tags between key and dates."""

    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)


class ComponentRow(VersionedResourceColumns, CreationColumns, Base):
    __tablename__ = "components"
    __table_args__ = (
        UniqueConstraint("account", "arn_name", "major", "minor", "patch", "build"),
        Index("ix_components_lookup", "account", "arn_name"),
    )

    build: Mapped[int] = mapped_column(Integer)
    platform: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(8))
    owner: Mapped[str] = mapped_column(String(1024))
    description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    change_description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    data: Mapped[str] = mapped_column(Text)
    data_hash: Mapped[str] = mapped_column(String(64))
    uri: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    supported_os_versions: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    parameters: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    kms_key_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))


class ImageRecipeRow(VersionedResourceColumns, CreationColumns, Base):
    __tablename__ = "image_recipes"
    __table_args__ = (
        UniqueConstraint("account", "arn_name", "major", "minor", "patch"),
        Index("ix_image_recipes_lookup", "account", "arn_name"),
    )

    platform: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(1024))
    description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    parent_image: Mapped[str] = mapped_column(String(1024))
    components: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    block_device_mappings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    working_directory: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    ami_tags: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))


class InfrastructureConfigurationRow(ConfigurationColumns, Base):
    __tablename__ = "infrastructure_configurations"


class DistributionConfigurationRow(ConfigurationColumns, Base):
    __tablename__ = "distribution_configurations"

