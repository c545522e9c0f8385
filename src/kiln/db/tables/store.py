"""The image store's metadata: layers, snapshots, AMIs, tags, launch and create-volume permissions, pins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class StoreLayer(Base):
    """A layer blob known to a region (size and uncompressed diff_id for the OCI config)."""

    __tablename__ = "store_layers"

    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    digest: Mapped[str] = mapped_column(String(80), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    diff_id: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StoreSnapshot(Base):
    __tablename__ = "store_snapshots"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    region: Mapped[str] = mapped_column(String(64), index=True)
    owner_id: Mapped[str] = mapped_column(String(12))
    parent_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StoreSnapshotLayer(Base):
    __tablename__ = "store_snapshot_layers"

    snapshot_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("store_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(80), index=True)


class StoreImage(Base):
    __tablename__ = "store_images"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    region: Mapped[str] = mapped_column(String(64), index=True)
    owner_id: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    architecture: Mapped[str] = mapped_column(String(16))
    root_device_type: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    state_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    snapshot_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    manifest_digest: Mapped[str | None] = mapped_column(String(80), nullable=True)
    source_image_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source_region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    creation_date: Mapped[datetime] = mapped_column(UTCDateTime())
    deprecation_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_launched_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    deregistered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    protection: Mapped[bool] = mapped_column(Boolean, default=False)
    protection_cooldown: Mapped[bool] = mapped_column(Boolean, default=False)
    protection_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # EC2's boot attributes; None: not set (an image without a kernel has no boot mode)
    boot_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ena_support: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    imds_support: Mapped[str | None] = mapped_column(String(8), nullable=True)
    tpm_support: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # the root volume's size in GiB (the recipe's block device mapping); None: not given (8 GiB)
    volume_size: Mapped[int | None] = mapped_column(Integer, nullable=True)


class StoreTag(Base):
    """Tags of AMIs and snapshots (any ``ami-``/``snap-`` resource id)."""

    __tablename__ = "store_tags"

    resource_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class StoreLaunchPermission(Base):
    __tablename__ = "store_launch_permissions"

    image_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("store_images.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), primary_key=True)


class StoreSnapshotPermission(Base):
    """A snapshot's ``createVolumePermission``: ``UserId`` (an account) or ``Group`` (``all``)."""

    __tablename__ = "store_snapshot_permissions"

    snapshot_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("store_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), primary_key=True)


class StoreBlockPublicAccess(Base):
    """EC2 image block public access, per account and region."""

    __tablename__ = "store_block_public_access"

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(32))


class StorePin(Base):
    """A blob an in-progress write or build may still reference; gc never deletes a pinned blob."""

    __tablename__ = "store_pins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    region: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(80), index=True)
    holder: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StoreWatermark(Base):
    """An AMI's watermark (EC2 ``ImageWatermark``): ``key`` is ``<account>:<name>``; the source fields name
    the AMI it was first attached to, and a copy is inherited by every AMI made or copied from this one."""

    __tablename__ = "store_watermarks"

    image_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("store_images.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(141), primary_key=True)
    source_image_id: Mapped[str] = mapped_column(String(32))
    source_image_region: Mapped[str] = mapped_column(String(64))
    source_image_creation_time: Mapped[datetime] = mapped_column(UTCDateTime())
    watermark_creation_time: Mapped[datetime] = mapped_column(UTCDateTime())
