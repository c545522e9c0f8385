"""The fleet: launch templates (per account and region) and their versions; allowed images settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class LaunchTemplateRow(Base):
    __tablename__ = "launch_templates"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # lt- + 17 hex digits
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    default_version: Mapped[int] = mapped_column(Integer)
    # The highest number ever given: numbers are never reused, even after versions are deleted.
    last_number: Mapped[int] = mapped_column(Integer)
    tags: Mapped[dict[str, str]] = mapped_column(JSON)
    client_token: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(256))


class LaunchTemplateVersionRow(Base):
    __tablename__ = "launch_template_versions"

    template_id: Mapped[str] = mapped_column(
        ForeignKey("launch_templates.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # LaunchTemplateData as given
    # The data's ImageId as given (an AMI id or resolve:ssm:…), for "which templates use this AMI".
    image_id: Mapped[str | None] = mapped_column(String(2048), nullable=True, index=True)
    client_token: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(256))


class AllowedImagesSettingsRow(Base):
    """EC2 Allowed AMIs of an account in a region: the state and the criteria (ImageCriterion list)."""

    __tablename__ = "allowed_images_settings"

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # enabled | audit-mode | disabled
    criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # kiln's stricter mode: the criteria also judge the account's own AMIs (EC2 never restricts them).
    include_own_images: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
