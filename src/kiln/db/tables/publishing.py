"""Images published to a cloud: one row per (image, target region, account, endpoint) with its EBS
snapshot, and the SHA-256 of every non-zero 512 KiB block of the disk that went into it.

The block rows serve two purposes: a killed upload resumes without resending the blocks marked
``sent``, and a child image published later to the same place sends only the blocks whose digest
differs from its parent's (``ParentSnapshotId``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class Publication(Base):
    __tablename__ = "publications"
    __table_args__ = (UniqueConstraint("image_id", "source_region", "target", "region", "account", "endpoint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(String(32))
    source_region: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(12))
    endpoint: Mapped[str] = mapped_column(String(512))  # "" for the partition's own endpoints
    profile: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the credentials' profile (0022)
    # uploading -> completing (CompleteSnapshot asked) -> registered
    state: Mapped[str] = mapped_column(String(16))
    client_token: Mapped[str] = mapped_column(String(64))
    snapshot_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    parent_snapshot_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    remote_image_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    volume_size: Mapped[int] = mapped_column(Integer)  # GiB
    # what the disk was made from, so a child's disk is laid out the same way (see aws.disk)
    disk_size: Mapped[int] = mapped_column(BigInteger)
    disk_identity: Mapped[str] = mapped_column(Text)
    disk_epoch: Mapped[int] = mapped_column(BigInteger)
    # the file system's size, and how many of the image's layers it was first made from (the rest
    # applied in place: kiln.store.export.DiskGeometry); NULL on rows older than 0022
    disk_fs_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    disk_base_layers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    blocks_sent: Mapped[int] = mapped_column(Integer, default=0)
    blocks_skipped: Mapped[int] = mapped_column(Integer, default=0)
    bytes_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PublishedBlock(Base):
    """One non-zero block of the published disk (or a block zeroed over a non-zero parent block)."""

    __tablename__ = "published_blocks"

    publication_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("publications.id", ondelete="CASCADE"), primary_key=True
    )
    block_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    sent: Mapped[bool] = mapped_column(Boolean, default=False)  # written into this publication's snapshot


class PublishRemoval(Base):
    """AMIs and snapshots published to AWS that must go (their kiln image was deleted, or the build that
    published them failed), kept until AWS confirms they are gone: an unreachable AWS is retried later."""

    __tablename__ = "publish_removals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reason: Mapped[str] = mapped_column(String(256))  # what asked for it (image deleted, build failed)
    region: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(12))
    # how to reach AWS and what to remove: profile, endpointUrl, sourceImageId, sourceRegion, amiId, snapshotId
    reach: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
