"""publish clean-up: AWS removals kept until done; a publication's profile, disk file system size, base layers

Revision ID: 0022_publish_cleanup
Revises: 0022_vulndb_generation
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_publish_cleanup"
down_revision = "0022_vulndb_generation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("publications") as batch:
        batch.add_column(sa.Column("disk_fs_size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("disk_base_layers", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("profile", sa.String(128), nullable=True))
    op.create_table(
        "publish_removals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reason", sa.String(256), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("reach", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publish_removals")),
    )


def downgrade() -> None:
    op.drop_table("publish_removals")
    with op.batch_alter_table("publications") as batch:
        batch.drop_column("profile")
        batch.drop_column("disk_base_layers")
        batch.drop_column("disk_fs_size")
