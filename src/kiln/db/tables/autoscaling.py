"""Auto Scaling groups (per account and region) and their instance refreshes.

A group's instances are not listed here: an instance belongs to a group through its
``aws:autoscaling:groupName`` tag, written with the instance's row before it boots, so a launch
interrupted by a crash can never leave an instance the group does not know about."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class AutoScalingGroupRow(Base):
    __tablename__ = "auto_scaling_groups"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    arn: Mapped[str] = mapped_column(String(1600), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    template_id: Mapped[str] = mapped_column(String(32))
    # As given: a number, $Default or $Latest (aliases are resolved at each launch).
    template_version: Mapped[str] = mapped_column(String(255))
    min_size: Mapped[int] = mapped_column(Integer)
    max_size: Mapped[int] = mapped_column(Integer)
    desired_capacity: Mapped[int] = mapped_column(Integer)
    health_check_type: Mapped[str] = mapped_column(String(32))
    health_check_grace_period: Mapped[int] = mapped_column(Integer)
    default_instance_warmup: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tags: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{Key, Value, PropagateAtLaunch}]
    status: Mapped[str | None] = mapped_column(String(64), nullable=True)  # "Delete in progress"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InstanceRefreshRow(Base):
    __tablename__ = "instance_refreshes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    group_arn: Mapped[str] = mapped_column(
        ForeignKey("auto_scaling_groups.arn", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(32))
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    strategy: Mapped[str] = mapped_column(String(32))
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON)
    # {"LaunchTemplate": {...}} or None (refresh onto the group's own configuration).
    desired_configuration: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The group's launch template and version when the refresh started: what a rollback restores.
    previous_configuration: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Instance ids this phase (the refresh, then a rollback) must replace, fixed when it begins.
    to_replace: Mapped[list[str]] = mapped_column(JSON)
    # Replacements launched in this phase that passed warm-up and the health check.
    healthy: Mapped[list[str]] = mapped_column(JSON)
    phase_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    percentage_complete: Mapped[int] = mapped_column(Integer)
    instances_to_update: Mapped[int] = mapped_column(Integer)
    checkpoints_passed: Mapped[int] = mapped_column(Integer)
    checkpoint_reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rollback_details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
