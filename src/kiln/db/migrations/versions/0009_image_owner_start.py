"""images.owner_start holds clock ticks since boot: 64-bit, like the instances' start times

A 32-bit INTEGER overflows after about 248 days of uptime at 100 ticks a second. SQLite's INTEGER is
already 64-bit (and altering a column type there would mean rebuilding the table), so only other
databases are altered.

Revision ID: 0009_image_owner_start
Revises: 0005_schedule
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_image_owner_start"
down_revision = "0005_schedule"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("images", "owner_start", type_=sa.BigInteger(), existing_type=sa.Integer(),
                        existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("images", "owner_start", type_=sa.Integer(), existing_type=sa.BigInteger(),
                        existing_nullable=True)
