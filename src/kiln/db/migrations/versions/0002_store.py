"""image store: layers, snapshots, AMIs, tags, launch permissions, block public access, pins

Revision ID: 0002_store
Revises: 0008_pipelines
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_store"
down_revision = "0008_pipelines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_layers",
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("media_type", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("diff_id", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("region", "digest", name=op.f("pk_store_layers")),
    )
    op.create_table(
        "store_snapshots",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.String(12), nullable=False),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_snapshots")),
    )
    op.create_index(op.f("ix_store_snapshots_region"), "store_snapshots", ["region"])
    op.create_table(
        "store_snapshot_layers",
        sa.Column("snapshot_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["store_snapshots.id"],
            ondelete="CASCADE",
            name=op.f("fk_store_snapshot_layers_snapshot_id_store_snapshots"),
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "position", name=op.f("pk_store_snapshot_layers")),
    )
    op.create_index(op.f("ix_store_snapshot_layers_digest"), "store_snapshot_layers", ["digest"])
    op.create_table(
        "store_images",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.String(12), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("architecture", sa.String(16), nullable=False),
        sa.Column("root_device_type", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("snapshot_id", sa.String(32), nullable=True),
        sa.Column("manifest_digest", sa.String(80), nullable=True),
        sa.Column("source_image_id", sa.String(32), nullable=True),
        sa.Column("source_region", sa.String(64), nullable=True),
        sa.Column("creation_date", sa.DateTime(), nullable=False),
        sa.Column("deprecation_time", sa.DateTime(), nullable=True),
        sa.Column("last_launched_time", sa.DateTime(), nullable=True),
        sa.Column("deregistered_at", sa.DateTime(), nullable=True),
        sa.Column("protection", sa.Boolean(), nullable=False),
        sa.Column("protection_cooldown", sa.Boolean(), nullable=False),
        sa.Column("protection_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_images")),
    )
    op.create_index(op.f("ix_store_images_region"), "store_images", ["region"])
    op.create_index(op.f("ix_store_images_snapshot_id"), "store_images", ["snapshot_id"])
    op.create_table(
        "store_tags",
        sa.Column("resource_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("resource_id", "key", name=op.f("pk_store_tags")),
    )
    op.create_table(
        "store_launch_permissions",
        sa.Column("image_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["store_images.id"],
            ondelete="CASCADE",
            name=op.f("fk_store_launch_permissions_image_id_store_images"),
        ),
        sa.PrimaryKeyConstraint("image_id", "kind", "value", name=op.f("pk_store_launch_permissions")),
    )
    op.create_table(
        "store_block_public_access",
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "region", name=op.f("pk_store_block_public_access")),
    )
    op.create_table(
        "store_pins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("holder", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_pins")),
    )
    op.create_index(op.f("ix_store_pins_digest"), "store_pins", ["digest"])


def downgrade() -> None:
    for table in (
        "store_pins",
        "store_block_public_access",
        "store_launch_permissions",
        "store_tags",
        "store_images",
        "store_snapshot_layers",
        "store_snapshots",
        "store_layers",
    ):
        op.drop_table(table)
