"""VM instances: EC2 key pairs (public keys per account and region); store images keep their root
volume size (the recipe's block device mapping VolumeSize)

Revision ID: 0020_vm_instances
Revises: 0020_workflows
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_vm_instances"
down_revision = "0020_workflows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_pairs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("key_type", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_pairs")),
        sa.UniqueConstraint("account_id", "region", "name", name=op.f("uq_key_pairs_account_id")),
    )

    # a plain ADD COLUMN: no table rebuild, so the rows that cascade from store_images stay
    op.add_column("store_images", sa.Column("volume_size", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("store_images") as batch:
        batch.drop_column("volume_size")
    op.drop_table("key_pairs")
