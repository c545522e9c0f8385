"""image pipelines and pipeline executions

Revision ID: 0008_pipelines
Revises: 0003_instances
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_pipelines"
down_revision = "0003_instances"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_pipelines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("arn", sa.String(1024), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("last_due_run", sa.DateTime(), nullable=True),
        sa.Column("date_last_run", sa.DateTime(), nullable=True),
        sa.Column("last_image_arn", sa.String(1024), nullable=True),
        sa.Column("client_token", sa.String(64), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_pipelines")),
        sa.UniqueConstraint("arn", name=op.f("uq_image_pipelines_arn")),
    )
    op.create_index(op.f("ix_image_pipelines_client_token"), "image_pipelines", ["client_token"])
    op.create_table(
        "pipeline_executions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("pipeline_arn", sa.String(1024), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("due_time", sa.DateTime(), nullable=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("image_arn", sa.String(1024), nullable=True),
        sa.Column("pipeline_version", sa.Integer(), nullable=False),
        sa.Column("client_token", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("os_marker", sa.JSON(), nullable=True),
        sa.Column("time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_executions")),
    )
    for column in ("pipeline_arn", "image_arn", "client_token"):
        op.create_index(op.f(f"ix_pipeline_executions_{column}"), "pipeline_executions", [column])


def downgrade() -> None:
    op.drop_table("pipeline_executions")
    op.drop_table("image_pipelines")
