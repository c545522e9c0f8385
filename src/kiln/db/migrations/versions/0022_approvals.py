"""image_approvals: the approval decision of an image build (approved builds mark every AMI they make)

Revision ID: 0022_approvals
Revises: 0021_scans
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_approvals"
down_revision = "0021_scans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_approvals",
        sa.Column("image_arn", sa.String(1024), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(12), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("step_execution_id", sa.String(64), nullable=True),
        sa.Column("watermark_key", sa.String(256), nullable=True),
        sa.ForeignKeyConstraint(["image_arn"], ["images.arn"], ondelete="CASCADE",
                                name=op.f("fk_image_approvals_image_arn_images")),
        sa.PrimaryKeyConstraint("image_arn", name=op.f("pk_image_approvals")),
    )


def downgrade() -> None:
    op.drop_table("image_approvals")
