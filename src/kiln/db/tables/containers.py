"""Container recipes (one row per version, immutable like image recipes)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base
from kiln.db.tables.resources import CreationColumns, VersionedResourceColumns


class ContainerRecipeRow(VersionedResourceColumns, CreationColumns, Base):
    __tablename__ = "container_recipes"
    __table_args__ = (
        UniqueConstraint("account", "arn_name", "major", "minor", "patch"),
        Index("ix_container_recipes_lookup", "account", "arn_name"),
    )

    platform: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(1024))
    parent_image: Mapped[str] = mapped_column(String(1024))
    repository_name: Mapped[str] = mapped_column(String(1024))
    components: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    dockerfile: Mapped[str] = mapped_column(Text)  # the template as given (data, or read from the uri)
    working_directory: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
