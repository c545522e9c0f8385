"""Image Builder workflows (one row per build version) and the workflow executions of each image.

A workflow execution is one workflow run for one image; its steps are the image's
``image_workflow_steps`` rows that carry its id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime
from kiln.db.tables.resources import CreationColumns, VersionedResourceColumns


class WorkflowRow(VersionedResourceColumns, CreationColumns, Base):
    __tablename__ = "workflows"
    __table_args__ = (
        UniqueConstraint("account", "type", "arn_name", "major", "minor", "patch", "build"),
        Index("ix_workflows_lookup", "account", "type", "arn_name"),
    )

    build: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))  # BUILD | TEST | DISTRIBUTION
    owner: Mapped[str] = mapped_column(String(1024))
    description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    change_description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    data: Mapped[str] = mapped_column(Text)
    uri: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    parameters: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    kms_key_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))


class WorkflowExecution(Base):
    __tablename__ = "workflow_executions"

    workflow_execution_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    image_arn: Mapped[str] = mapped_column(ForeignKey("images.arn", ondelete="CASCADE"), index=True)
    workflow_arn: Mapped[str] = mapped_column(String(1024))
    type: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    parallel_group: Mapped[str | None] = mapped_column(String(100))
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
