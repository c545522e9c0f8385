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


class ComponentRow(Base):
    __tablename__ = "components"
    __table_args__ = (
        UniqueConstraint("account", "arn_name", "major", "minor", "patch", "build"),
        Index("ix_components_lookup", "account", "arn_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    arn: Mapped[str] = mapped_column(String(1024), unique=True)
    account: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    arn_name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    major: Mapped[int] = mapped_column(Integer)
    minor: Mapped[int] = mapped_column(Integer)
    patch: Mapped[int] = mapped_column(Integer)
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
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime())


class ImageRecipeRow(Base):
    __tablename__ = "image_recipes"
    __table_args__ = (
        UniqueConstraint("account", "arn_name", "major", "minor", "patch"),
        Index("ix_image_recipes_lookup", "account", "arn_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    arn: Mapped[str] = mapped_column(String(1024), unique=True)
    account: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    arn_name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    major: Mapped[int] = mapped_column(Integer)
    minor: Mapped[int] = mapped_column(Integer)
    patch: Mapped[int] = mapped_column(Integer)
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
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime())


class InfrastructureConfigurationRow(Base):
    __tablename__ = "infrastructure_configurations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    arn: Mapped[str] = mapped_column(String(1024), unique=True)
    account: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime())
    date_updated: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DistributionConfigurationRow(Base):
    __tablename__ = "distribution_configurations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    arn: Mapped[str] = mapped_column(String(1024), unique=True)
    account: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime())
    date_updated: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
