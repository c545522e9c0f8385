"""compliance: rules the fleet's images are audited against

Revision ID: 0018_compliance
Revises: 0015_client_tokens
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_compliance"
down_revision = "0015_client_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compliance_rules",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.String(1024), nullable=True),
        sa.Column("max_age_days", sa.Integer(), nullable=False),
        sa.Column("required_tags", sa.JSON(), nullable=False),
        sa.Column("accounts", sa.JSON(), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("min_healthy_percentage", sa.Integer(), nullable=False),
        sa.Column("set_default_version", sa.Boolean(), nullable=False),
        sa.Column("schedule", sa.String(256), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_compliance_rules")),
    )


def downgrade() -> None:
    op.drop_table("compliance_rules")
