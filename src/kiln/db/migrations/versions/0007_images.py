"""images (builds) and their workflow steps

Revision ID: 0007_images
Revises: 0006_lifecycle
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_images"
down_revision = "0006_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("arn", sa.String(1024), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("build_number", sa.Integer(), nullable=False),
        sa.Column("recipe_arn", sa.String(1024), nullable=False),
        sa.Column("infrastructure_arn", sa.String(1024), nullable=False),
        sa.Column("distribution_arn", sa.String(1024), nullable=True),
        sa.Column("pipeline_arn", sa.String(1024), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("os_version", sa.String(128), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.Column("tests_enabled", sa.Boolean(), nullable=False),
        sa.Column("tests_timeout_minutes", sa.Integer(), nullable=False),
        sa.Column("enhanced_metadata", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("output_amis", sa.JSON(), nullable=False),
        sa.Column("packages", sa.JSON(), nullable=True),
        sa.Column("resolved_inputs", sa.JSON(), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("cached_from", sa.String(1024), nullable=True),
        sa.Column("owner_pid", sa.Integer(), nullable=True),
        sa.Column("owner_start", sa.Integer(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("build_instance_id", sa.String(32), nullable=True),
        sa.Column("test_instance_id", sa.String(32), nullable=True),
        sa.Column("intermediate_ami_id", sa.String(32), nullable=True),
        sa.Column("workflow_execution_id", sa.String(64), nullable=False),
        sa.Column("log_directory", sa.String(1024), nullable=True),
        sa.Column("deprecation_time", sa.DateTime(), nullable=True),
        sa.Column("lifecycle_execution_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("arn", name=op.f("pk_images")),
        sa.UniqueConstraint("name", "version", "build_number", name=op.f("uq_images_name")),
    )
    for column in ("name", "recipe_arn", "infrastructure_arn", "distribution_arn", "pipeline_arn", "status",
                   "cache_key"):
        op.create_index(op.f(f"ix_images_{column}"), "images", [column])
    op.create_table(
        "image_workflow_steps",
        sa.Column("step_execution_id", sa.String(64), nullable=False),
        sa.Column("image_arn", sa.String(1024), nullable=False),
        sa.Column("workflow", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("log_path", sa.String(1024), nullable=True),
        sa.ForeignKeyConstraint(["image_arn"], ["images.arn"], ondelete="CASCADE",
                                name=op.f("fk_image_workflow_steps_image_arn_images")),
        sa.PrimaryKeyConstraint("step_execution_id", name=op.f("pk_image_workflow_steps")),
    )
    op.create_index(op.f("ix_image_workflow_steps_image_arn"), "image_workflow_steps", ["image_arn"])


def downgrade() -> None:
    op.drop_table("image_workflow_steps")
    op.drop_table("images")
