"""Image Builder images (one row per build) and the workflow steps each build ran."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class ImageBuild(Base):
    __tablename__ = "images"
    # Build numbers count per account: another account's builds of the name and version are not seen.
    __table_args__ = (UniqueConstraint("account", "name", "version", "build_number"),)

    arn: Mapped[str] = mapped_column(String(1024), primary_key=True)
    account: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[str] = mapped_column(String(64))
    build_number: Mapped[int] = mapped_column(Integer)
    recipe_arn: Mapped[str] = mapped_column(String(1024), index=True)
    infrastructure_arn: Mapped[str] = mapped_column(String(1024), index=True)
    distribution_arn: Mapped[str | None] = mapped_column(String(1024), index=True)
    pipeline_arn: Mapped[str | None] = mapped_column(String(1024), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    platform: Mapped[str] = mapped_column(String(16), default="Linux")
    os_version: Mapped[str | None] = mapped_column(String(128))
    date_created: Mapped[datetime] = mapped_column(UTCDateTime())
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime())
    tests_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    tests_timeout_minutes: Mapped[int] = mapped_column(Integer, default=720)
    enhanced_metadata: Mapped[bool] = mapped_column(Boolean, default=True)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    output_amis: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    packages: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    # What the build resolved its inputs to (parent AMI, component build ARNs, parameters).
    resolved_inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cache_key: Mapped[str | None] = mapped_column(String(64), index=True)
    cached_from: Mapped[str | None] = mapped_column(String(1024))
    # Who runs the build: a dead owner means the build was interrupted.
    owner_pid: Mapped[int | None] = mapped_column(Integer)
    owner_start: Mapped[int | None] = mapped_column(BigInteger)  # clock ticks since boot
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    build_instance_id: Mapped[str | None] = mapped_column(String(32))
    test_instance_id: Mapped[str | None] = mapped_column(String(32))
    intermediate_ami_id: Mapped[str | None] = mapped_column(String(32))
    workflow_execution_id: Mapped[str] = mapped_column(String(64))
    log_directory: Mapped[str | None] = mapped_column(String(1024))
    deprecation_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lifecycle_execution_id: Mapped[str | None] = mapped_column(String(64))
    # CreateImage's / the pipeline's ``workflows`` (None: the managed ones) and ``executionRole``
    workflows: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    execution_role: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    # A container build's outputResources.containers ({region, imageUris}); AMI builds have none.
    output_containers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # The hash of the ``kiln apply`` Image document that started this build: applied again, unchanged.
    apply_hash: Mapped[str | None] = mapped_column(String(64), index=True)


class WorkflowStep(Base):
    __tablename__ = "image_workflow_steps"

    step_execution_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    image_arn: Mapped[str] = mapped_column(ForeignKey("images.arn", ondelete="CASCADE"), index=True)
    workflow: Mapped[str] = mapped_column(String(16))  # build | test | distribution
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    log_path: Mapped[str | None] = mapped_column(String(1024))
    # The workflow execution (``workflow_executions``) the step belongs to, and what its document said.
    workflow_execution_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    on_failure: Mapped[str | None] = mapped_column(String(16), nullable=True)
    timeout_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # SendWorkflowStepAction's answer to a WAITING step (RESUME | STOP) and its reason
    action_requested: Mapped[str | None] = mapped_column(String(16), nullable=True)
    action_reason: Mapped[str | None] = mapped_column(String(1024), nullable=True)
