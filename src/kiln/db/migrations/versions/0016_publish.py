"""publish: images published to AWS as EBS snapshots and AMIs, with per-block digests

Revision ID: 0016_publish
Revises: 0012_distribution
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_publish"
down_revision = "0012_distribution"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "publications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(32), nullable=False),
        sa.Column("source_region", sa.String(64), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("endpoint", sa.String(512), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("client_token", sa.String(64), nullable=False),
        sa.Column("snapshot_id", sa.String(32), nullable=True),
        sa.Column("parent_snapshot_id", sa.String(32), nullable=True),
        sa.Column("remote_image_id", sa.String(32), nullable=True),
        sa.Column("volume_size", sa.Integer(), nullable=False),
        sa.Column("disk_size", sa.BigInteger(), nullable=False),
        sa.Column("disk_identity", sa.Text(), nullable=False),
        sa.Column("disk_epoch", sa.BigInteger(), nullable=False),
        sa.Column("blocks_sent", sa.Integer(), nullable=False),
        sa.Column("blocks_skipped", sa.Integer(), nullable=False),
        sa.Column("bytes_sent", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publications")),
        sa.UniqueConstraint("image_id", "source_region", "target", "region", "account", "endpoint",
                            name=op.f("uq_publications_image_id")),
    )
    op.create_table(
        "published_blocks",
        sa.Column("publication_id", sa.Integer(), nullable=False),
        sa.Column("block_index", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["publication_id"], ["publications.id"], ondelete="CASCADE",
                                name=op.f("fk_published_blocks_publication_id_publications")),
        sa.PrimaryKeyConstraint("publication_id", "block_index", name=op.f("pk_published_blocks")),
    )


def downgrade() -> None:
    op.drop_table("published_blocks")
    op.drop_table("publications")
