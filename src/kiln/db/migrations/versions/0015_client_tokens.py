"""client tokens: idempotent API requests per account, region and service; the queue of API-started builds

Revision ID: 0015_client_tokens
Revises: 0015_allowed_images
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_client_tokens"
down_revision = "0015_allowed_images"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_tokens",
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("token", sa.String(256), nullable=False),
        sa.Column("operation", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "region", "service", "token", name=op.f("pk_client_tokens")),
    )
    op.create_index(op.f("ix_client_tokens_created_at"), "client_tokens", ["created_at"])
    op.create_table(
        "build_queue",
        sa.Column("image_arn", sa.String(1024), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("image_arn", name=op.f("pk_build_queue")),
    )


def downgrade() -> None:
    op.drop_table("build_queue")
    op.drop_index(op.f("ix_client_tokens_created_at"), "client_tokens")
    op.drop_table("client_tokens")
