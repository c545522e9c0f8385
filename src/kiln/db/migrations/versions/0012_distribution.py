"""distribution: what a build's distribution made so far (AMI copies, disk exports)

Revision ID: 0012_distribution
Revises: 0014_launch_templates
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_distribution"
down_revision = "0014_launch_templates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "distribution_outputs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_arn", sa.String(1024), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("resource", sa.String(1024), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["image_arn"], ["images.arn"], ondelete="CASCADE",
                                name=op.f("fk_distribution_outputs_image_arn_images")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distribution_outputs")),
    )
    op.create_index(op.f("ix_distribution_outputs_image_arn"), "distribution_outputs", ["image_arn"])


def downgrade() -> None:
    op.drop_index(op.f("ix_distribution_outputs_image_arn"), "distribution_outputs")
    op.drop_table("distribution_outputs")
