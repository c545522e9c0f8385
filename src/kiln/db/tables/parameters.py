"""SSM Parameter Store: parameters per account and region, every kept version, and labels."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class ParameterRow(Base):
    __tablename__ = "ssm_parameters"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(1011))  # SSM's usable name length
    latest_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ParameterVersionRow(Base):
    """One version of a parameter; the newest ``MAX_VERSIONS`` are kept, as SSM keeps them."""

    __tablename__ = "ssm_parameter_versions"

    parameter_id: Mapped[int] = mapped_column(
        ForeignKey("ssm_parameters.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(16))  # String | StringList
    data_type: Mapped[str] = mapped_column(String(128))  # text | aws:ec2:image
    value: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    modified_by: Mapped[str] = mapped_column(String(256))


class ParameterLabelRow(Base):
    """A label names one version of its parameter; labelling another version moves it."""

    __tablename__ = "ssm_parameter_labels"

    parameter_id: Mapped[int] = mapped_column(
        ForeignKey("ssm_parameters.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
