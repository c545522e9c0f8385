"""Approvals of image builds (``kiln image approve|reject``, or SendWorkflowStepAction on the managed
approval step): a property of the build, so every AMI the build makes — before or after the decision, in
any region or account — carries the ``approved`` watermark."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class ImageApproval(Base):
    __tablename__ = "image_approvals"

    image_arn: Mapped[str] = mapped_column(ForeignKey("images.arn", ondelete="CASCADE"), primary_key=True)
    decision: Mapped[str] = mapped_column(String(16))  # APPROVED | REJECTED
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[str] = mapped_column(String(12))  # the account that sent the decision
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    step_execution_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    watermark_key: Mapped[str | None] = mapped_column(String(256), nullable=True)
