"""What the API remembers of requests: idempotency tokens, and builds queued for the scheduler's workers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class ClientToken(Base):
    """One idempotency token of one account in one region of one service: the request it came with (by
    fingerprint) and, once that request succeeded, its answer (NULL while the first request runs)."""

    __tablename__ = "client_tokens"

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    service: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(256), primary_key=True)
    operation: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class QueuedBuild(Base):
    """An image (CreateImage, StartImagePipelineExecution over the API) waiting for a scheduler worker."""

    __tablename__ = "build_queue"

    image_arn: Mapped[str] = mapped_column(String(1024), primary_key=True)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
