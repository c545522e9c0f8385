"""lifecycle policies and executions

Revision ID: 0006_lifecycle
Revises: 0004_resources
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_lifecycle"
down_revision = "0004_resources"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lifecycle_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("arn", sa.String(1024), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("client_token", sa.String(64), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=True),
        sa.Column("date_last_run", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_policies")),
        sa.UniqueConstraint("arn", name=op.f("uq_lifecycle_policies_arn")),
    )
    op.create_table(
        "lifecycle_executions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("policy_arn", sa.String(1024), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=False),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("has_impacted_resources", sa.Boolean(), nullable=False),
        sa.Column("resources_total", sa.Integer(), nullable=False),
        sa.Column("resources_succeeded", sa.Integer(), nullable=False),
        sa.Column("resources_failed", sa.Integer(), nullable=False),
        sa.Column("resources_skipped", sa.Integer(), nullable=False),
        sa.Column("bytes_freed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_executions")),
    )
    op.create_index(
        op.f("ix_lifecycle_executions_policy_arn"), "lifecycle_executions", ["policy_arn"], unique=False
    )
    op.create_table(
        "lifecycle_execution_resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("parent_resource_id", sa.String(1024), nullable=True),
        sa.Column("account_id", sa.String(32), nullable=True),
        sa.Column("resource_id", sa.String(1024), nullable=False),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("action_reason", sa.Text(), nullable=True),
        sa.Column("snapshots", sa.JSON(), nullable=False),
        sa.Column("image_uris", sa.JSON(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["lifecycle_executions.id"],
            name=op.f("fk_lifecycle_execution_resources_execution_id_lifecycle_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_execution_resources")),
    )
    op.create_index(
        "ix_lifecycle_execution_resources_execution_seq",
        "lifecycle_execution_resources",
        ["execution_id", "seq"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_lifecycle_execution_resources_execution_seq", table_name="lifecycle_execution_resources"
    )
    op.drop_table("lifecycle_execution_resources")
    op.drop_index(op.f("ix_lifecycle_executions_policy_arn"), table_name="lifecycle_executions")
    op.drop_table("lifecycle_executions")
    op.drop_table("lifecycle_policies")
