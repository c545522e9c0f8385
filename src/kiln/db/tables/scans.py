"""Each AMI's latest vulnerability scan (``kiln image scan``, a build's scan step, the daily rescan)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class ImageScanRow(Base):
    """The latest scan of one AMI (``image_id``) or, before its AMI exists or after a failed gate removed
    it, of one image build (``image_arn``). Not tied to ``store_images`` by a foreign key: Image Builder
    keeps an image's findings after its AMI is gone."""

    __tablename__ = "image_scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    image_arn: Mapped[str | None] = mapped_column(String(1024), nullable=True, index=True)
    pipeline_arn: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    account: Mapped[str] = mapped_column(String(12), index=True)
    region: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # Image Builder's ImageScanStatus
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    scanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # matching.Finding.as_json()
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # summary.ScanSummary.as_json()
    ec2_results: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # EC2 ScanResults
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    # an image build's imageScanningConfiguration, while its scan step is to come and after
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
