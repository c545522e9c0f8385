"""instances

Revision ID: 0003_instances
Revises: 0007_images
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_instances"
down_revision = "0007_images"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("image_id", sa.String(64), nullable=True),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("instance_type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason_code", sa.String(64), nullable=True),
        sa.Column("state_reason", sa.String(512), nullable=True),
        sa.Column("state_changed_at", sa.DateTime(), nullable=False),
        sa.Column("root_device_type", sa.String(16), nullable=False),
        sa.Column("network", sa.String(8), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.Integer(), nullable=False),
        sa.Column("lower_dirs", sa.JSON(), nullable=False),
        sa.Column("paths", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("launch_time", sa.DateTime(), nullable=False),
        sa.Column("init_pid", sa.Integer(), nullable=True),
        sa.Column("init_start_time", sa.BigInteger(), nullable=True),
        sa.Column("monitor_pid", sa.Integer(), nullable=True),
        sa.Column("monitor_start_time", sa.BigInteger(), nullable=True),
        sa.Column("owner_pid", sa.Integer(), nullable=True),
        sa.Column("owner_start_time", sa.BigInteger(), nullable=True),
        sa.Column("owned", sa.Boolean(), nullable=False),
        sa.Column("transition", sa.String(16), nullable=True),
        sa.Column("busy_pid", sa.Integer(), nullable=True),
        sa.Column("busy_start_time", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
    )
    op.create_index(op.f("ix_instances_state"), "instances", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_instances_state"), table_name="instances")
    op.drop_table("instances")
