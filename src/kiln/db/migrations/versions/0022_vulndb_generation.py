"""vulndb_generation: a counter of advisory data changes (per-process advisory index caches)

Revision ID: 0022_vulndb_generation
Revises: 0022_approvals
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0022_vulndb_generation"
down_revision = "0022_approvals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "vulndb_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vulndb_generation")),
    )
    op.bulk_insert(table, [{"id": 1, "token": uuid.uuid4().hex, "generation": 0}])


def downgrade() -> None:
    op.drop_table("vulndb_generation")
