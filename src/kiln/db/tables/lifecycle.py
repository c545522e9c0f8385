"""Lifecycle policies, their executions, and the per-resource record of each execution."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class LifecyclePolicyRow(Base):
    __tablename__ = "lifecycle_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arn: Mapped[str] = mapped_column(String(1024), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    resource_type: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # executionRole, policyDetails, resourceSelection
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime())
    date_updated: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    date_last_run: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LifecycleExecutionRow(Base):
    __tablename__ = "lifecycle_executions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # lce-<uuid>
    policy_arn: Mapped[str] = mapped_column(String(1024), index=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    has_impacted_resources: Mapped[bool] = mapped_column(Boolean, default=False)
    resources_total: Mapped[int] = mapped_column(Integer, default=0)
    resources_succeeded: Mapped[int] = mapped_column(Integer, default=0)
    resources_failed: Mapped[int] = mapped_column(Integer, default=0)
    resources_skipped: Mapped[int] = mapped_column(Integer, default=0)
    bytes_freed: Mapped[int] = mapped_column(BigInteger, default=0)


class LifecycleExecutionResourceRow(Base):
    """One image, AMI or snapshot an execution acted on (or skipped), in the order it is processed."""

    __tablename__ = "lifecycle_execution_resources"
    __table_args__ = (Index("ix_lifecycle_execution_resources_execution_seq", "execution_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    execution_id: Mapped[str] = mapped_column(ForeignKey("lifecycle_executions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # image | ami | snapshot
    parent_resource_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    account_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    resource_id: Mapped[str] = mapped_column(String(1024))
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # IN_PROGRESS (pending) | SUCCESS | FAILED | SKIPPED
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    action: Mapped[str] = mapped_column(String(16))  # AVAILABLE | DELETE | DEPRECATE | DISABLE
    action_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    snapshots: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    image_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
