"""image_scans: each AMI's (or image build's) latest vulnerability scan

Revision ID: 0021_scans
Revises: 0020_vm_instances
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_scans"
down_revision = "0020_vm_instances"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_scans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(32), nullable=True),
        sa.Column("image_arn", sa.String(1024), nullable=True),
        sa.Column("pipeline_arn", sa.String(1024), nullable=True),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("scanned_at", sa.DateTime(), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("ec2_results", sa.JSON(), nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_scans")),
        sa.UniqueConstraint("image_id", name=op.f("uq_image_scans_image_id")),
    )
    op.create_index(op.f("ix_image_scans_image_arn"), "image_scans", ["image_arn"])
    op.create_index(op.f("ix_image_scans_account"), "image_scans", ["account"])


def downgrade() -> None:
    op.drop_index(op.f("ix_image_scans_account"), table_name="image_scans")
    op.drop_index(op.f("ix_image_scans_image_arn"), table_name="image_scans")
    op.drop_table("image_scans")
