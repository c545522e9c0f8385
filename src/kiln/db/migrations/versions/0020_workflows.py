"""workflows: Image Builder workflow resources, workflow executions per image, and what each step
execution's document said (inputs, onFailure, timeout) and the action a waiting step received

Revision ID: 0020_workflows
Revises: 0020_vulndb
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_workflows"
down_revision = "0020_vulndb"
branch_labels = None
depends_on = None

_STEP_COLUMNS = (
    sa.Column("workflow_execution_id", sa.String(64), nullable=True),
    sa.Column("description", sa.String(1024), nullable=True),
    sa.Column("inputs", sa.JSON(), nullable=True),
    sa.Column("on_failure", sa.String(16), nullable=True),
    sa.Column("timeout_seconds", sa.Integer(), nullable=True),
    sa.Column("action_requested", sa.String(16), nullable=True),
    sa.Column("action_reason", sa.String(1024), nullable=True),
)


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("arn", sa.String(1024), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("arn_name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("major", sa.Integer(), nullable=False),
        sa.Column("minor", sa.Integer(), nullable=False),
        sa.Column("patch", sa.Integer(), nullable=False),
        sa.Column("build", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(1024), nullable=False),
        sa.Column("description", sa.String(1024), nullable=True),
        sa.Column("change_description", sa.String(1024), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("uri", sa.String(2048), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("kms_key_id", sa.String(1024), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("client_token", sa.String(64), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
        sa.UniqueConstraint("arn", name=op.f("uq_workflows_arn")),
        sa.UniqueConstraint("account", "type", "arn_name", "major", "minor", "patch", "build",
                            name=op.f("uq_workflows_account")),
    )
    op.create_index("ix_workflows_lookup", "workflows", ["account", "type", "arn_name"])
    op.create_index(op.f("ix_workflows_client_token"), "workflows", ["client_token"])
    op.create_table(
        "workflow_executions",
        sa.Column("workflow_execution_id", sa.String(64), nullable=False),
        sa.Column("image_arn", sa.String(1024), nullable=False),
        sa.Column("workflow_arn", sa.String(1024), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("parallel_group", sa.String(100), nullable=True),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["image_arn"], ["images.arn"], ondelete="CASCADE",
                                name=op.f("fk_workflow_executions_image_arn_images")),
        sa.PrimaryKeyConstraint("workflow_execution_id", name=op.f("pk_workflow_executions")),
    )
    op.create_index(op.f("ix_workflow_executions_image_arn"), "workflow_executions", ["image_arn"])
    op.add_column("images", sa.Column("workflows", sa.JSON(), nullable=True))
    op.add_column("images", sa.Column("execution_role", sa.String(2048), nullable=True))
    for column in _STEP_COLUMNS:
        op.add_column("image_workflow_steps", column)
    op.create_index(op.f("ix_image_workflow_steps_workflow_execution_id"), "image_workflow_steps",
                    ["workflow_execution_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_image_workflow_steps_workflow_execution_id"), "image_workflow_steps")
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild of ``images`` would cascade-delete its children.
    for column in _STEP_COLUMNS:
        op.drop_column("image_workflow_steps", column.name)
    op.drop_column("images", "execution_role")
    op.drop_column("images", "workflows")
    op.drop_table("workflow_executions")
    op.drop_table("workflows")
