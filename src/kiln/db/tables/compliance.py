"""Compliance rules: which images the fleet may run (max age, required tags) and where they apply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class ComplianceRuleRow(Base):
    __tablename__ = "compliance_rules"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    max_age_days: Mapped[int] = mapped_column(Integer)
    required_tags: Mapped[dict[str, str]] = mapped_column(JSON)
    accounts: Mapped[list[str]] = mapped_column(JSON)  # empty: every account
    regions: Mapped[list[str]] = mapped_column(JSON)  # empty: every region
    min_healthy_percentage: Mapped[int] = mapped_column(Integer)
    set_default_version: Mapped[bool] = mapped_column(Boolean)
    schedule: Mapped[str | None] = mapped_column(String(256), nullable=True)  # cron(...) or none
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rule: Mapped[dict[str, Any]] = mapped_column(JSON)  # the document as applied
