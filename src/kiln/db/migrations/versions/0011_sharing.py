"""sharing: snapshots' createVolumePermission, the owner alias of accounts, the account of instances

Revision ID: 0011_sharing
Revises: 0010_accounts
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_sharing"
down_revision = "0010_accounts"
branch_labels = None
depends_on = None

DEFAULT_ACCOUNT = "123456789012"


def upgrade() -> None:
    op.create_table(
        "store_snapshot_permissions",
        sa.Column("snapshot_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.ForeignKeyConstraint(["snapshot_id"], ["store_snapshots.id"], ondelete="CASCADE",
                                name=op.f("fk_store_snapshot_permissions_snapshot_id_store_snapshots")),
        sa.PrimaryKeyConstraint("snapshot_id", "kind", "value", name=op.f("pk_store_snapshot_permissions")),
    )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("image_owner_alias", sa.String(32), nullable=True))
    with op.batch_alter_table("instances") as batch:
        # Instances launched before accounts existed belong to the default account.
        batch.add_column(sa.Column("account_id", sa.String(12), nullable=False, server_default=DEFAULT_ACCOUNT))
    op.create_index(op.f("ix_instances_account_id"), "instances", ["account_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_instances_account_id"), "instances")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("account_id")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("image_owner_alias")
    op.drop_table("store_snapshot_permissions")
