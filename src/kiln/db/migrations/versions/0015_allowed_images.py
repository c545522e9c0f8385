"""allowed images: EC2 Allowed AMIs settings per account and region

Revision ID: 0015_allowed_images
Revises: 0017_autoscaling
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_allowed_images"
down_revision = "0017_autoscaling"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "allowed_images_settings",
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("include_own_images", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "region", name=op.f("pk_allowed_images_settings")),
    )


def downgrade() -> None:
    op.drop_table("allowed_images_settings")
