"""What a build's distribution made so far, one row per AMI copy or disk export: failure clean-up and
restart recovery read it to remove everything a distribution that did not finish left behind."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class DistributionOutput(Base):
    __tablename__ = "distribution_outputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_arn: Mapped[str] = mapped_column(ForeignKey("images.arn", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # ami | export
    region: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(12))
    # The AMI id or the export's path; empty until made (a row written first says it is being made).
    resource: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16))  # MAKING | MADE
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
