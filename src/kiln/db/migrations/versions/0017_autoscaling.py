"""auto scaling groups and their instance refreshes

Revision ID: 0017_autoscaling
Revises: 0016_publish
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_autoscaling"
down_revision = "0016_publish"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auto_scaling_groups",
        sa.Column("arn", sa.String(1600), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("template_id", sa.String(32), nullable=False),
        sa.Column("template_version", sa.String(255), nullable=False),
        sa.Column("min_size", sa.Integer(), nullable=False),
        sa.Column("max_size", sa.Integer(), nullable=False),
        sa.Column("desired_capacity", sa.Integer(), nullable=False),
        sa.Column("health_check_type", sa.String(32), nullable=False),
        sa.Column("health_check_grace_period", sa.Integer(), nullable=False),
        sa.Column("default_instance_warmup", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("arn", name=op.f("pk_auto_scaling_groups")),
        sa.UniqueConstraint("account_id", "region", "name", name=op.f("uq_auto_scaling_groups_account_id")),
    )
    op.create_table(
        "instance_refreshes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("group_arn", sa.String(1600), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("preferences", sa.JSON(), nullable=False),
        sa.Column("desired_configuration", sa.JSON(), nullable=True),
        sa.Column("previous_configuration", sa.JSON(), nullable=False),
        sa.Column("to_replace", sa.JSON(), nullable=False),
        sa.Column("healthy", sa.JSON(), nullable=False),
        sa.Column("phase_started_at", sa.DateTime(), nullable=False),
        sa.Column("percentage_complete", sa.Integer(), nullable=False),
        sa.Column("instances_to_update", sa.Integer(), nullable=False),
        sa.Column("checkpoints_passed", sa.Integer(), nullable=False),
        sa.Column("checkpoint_reached_at", sa.DateTime(), nullable=True),
        sa.Column("rollback_details", sa.JSON(), nullable=True),
        sa.Column("start_time", sa.DateTime(), nullable=False),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["group_arn"], ["auto_scaling_groups.arn"], ondelete="CASCADE",
                                name=op.f("fk_instance_refreshes_group_arn_auto_scaling_groups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_refreshes")),
    )
    op.create_index(op.f("ix_instance_refreshes_group_arn"), "instance_refreshes", ["group_arn"])


def downgrade() -> None:
    op.drop_index(op.f("ix_instance_refreshes_group_arn"), "instance_refreshes")
    op.drop_table("instance_refreshes")
    op.drop_table("auto_scaling_groups")
