"""Scheduler and event-log tables: due-run claims, the jobs version counter, events, webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime, utcnow


class ScheduleClaim(Base):
    """One row per (job, due time) ever started: the unique key makes each start happen once."""

    __tablename__ = "schedule_claims"
    __table_args__ = (UniqueConstraint("key", "due_time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(512))
    due_time: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str] = mapped_column(String(256))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ScheduleVersion(Base):
    """A counter bumped whenever scheduled jobs change, so schedulers re-read jobs cheaply."""

    __tablename__ = "schedule_versions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(128))
    arn: Mapped[str] = mapped_column(String(1024))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str | None] = mapped_column(String(512), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """The outbox: one row per (event, webhook), retried with backoff until delivered or given up."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="PENDING", index=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
