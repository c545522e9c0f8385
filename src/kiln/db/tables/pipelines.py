"""Image pipelines and the record of every pipeline execution decision (started, skipped, failed to start)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime
from kiln.db.tables.resources import NamedResourceColumns, UpdatedColumns


class ImagePipelineRow(NamedResourceColumns, UpdatedColumns, Base):
    __tablename__ = "image_pipelines"

    # The stored request body (minus clientToken): what GetImagePipeline answers from.
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    # Configuration revision: 1 at creation, +1 whenever UpdateImagePipeline changes something.
    version: Mapped[int] = mapped_column(Integer)
    consecutive_failures: Mapped[int] = mapped_column(Integer)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The last schedule time the scheduler evaluated (whatever it decided).
    last_due_run: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    date_last_run: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_image_arn: Mapped[str | None] = mapped_column(String(1024), nullable=True)


class PipelineExecutionRow(Base):
    __tablename__ = "pipeline_executions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pipeline_arn: Mapped[str] = mapped_column(String(1024), index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # SCHEDULE | MANUAL
    due_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decision: Mapped[str] = mapped_column(String(16))  # STARTED | SKIPPED | FAILED_TO_START
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    image_arn: Mapped[str | None] = mapped_column(String(1024), nullable=True, index=True)
    pipeline_version: Mapped[int] = mapped_column(Integer)
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # Final image status once the build ended (AVAILABLE, FAILED, CANCELLED), None while running.
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # What the OS mirror said when the run started (Release dates), for dependency checks.
    os_marker: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime())
