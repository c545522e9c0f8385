"""AMI watermarks (EC2 AttachImageWatermark), inherited by images made or copied from a marked one

Revision ID: 0020_watermarks
Revises: 0019_image_numbers
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_watermarks"
down_revision = "0019_image_numbers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_watermarks",
        sa.Column("image_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(141), nullable=False),
        sa.Column("source_image_id", sa.String(32), nullable=False),
        sa.Column("source_image_region", sa.String(64), nullable=False),
        sa.Column("source_image_creation_time", sa.DateTime(), nullable=False),
        sa.Column("watermark_creation_time", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["store_images.id"], ondelete="CASCADE",
                                name=op.f("fk_store_watermarks_image_id_store_images")),
        sa.PrimaryKeyConstraint("image_id", "key", name=op.f("pk_store_watermarks")),
    )


def downgrade() -> None:
    op.drop_table("store_watermarks")
