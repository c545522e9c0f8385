"""accounts, access keys, organizations, organizational units, regions

Revision ID: 0010_accounts
Revises: 0009_image_owner_start
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_accounts"
down_revision = "0009_image_owner_start"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(12), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("email", sa.String(64), nullable=True),
        sa.Column("organization_id", sa.String(34), nullable=True),
        sa.Column("parent_id", sa.String(68), nullable=True),
        sa.Column("joined_method", sa.String(16), nullable=True),
        sa.Column("joined_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_index(op.f("ix_accounts_organization_id"), "accounts", ["organization_id"])
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(20), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("secret_access_key", sa.String(40), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_access_keys_account_id_accounts")),
        sa.PrimaryKeyConstraint("access_key_id", name=op.f("pk_access_keys")),
    )
    op.create_index(op.f("ix_access_keys_account_id"), "access_keys", ["account_id"])
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(34), nullable=False),
        sa.Column("management_account_id", sa.String(12), nullable=False),
        sa.Column("root_id", sa.String(34), nullable=False),
        sa.Column("feature_set", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["management_account_id"], ["accounts.id"],
                                name=op.f("fk_organizations_management_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("management_account_id", name=op.f("uq_organizations_management_account_id")),
        sa.UniqueConstraint("root_id", name=op.f("uq_organizations_root_id")),
    )
    op.create_table(
        "organizational_units",
        sa.Column("id", sa.String(68), nullable=False),
        sa.Column("organization_id", sa.String(34), nullable=False),
        sa.Column("parent_id", sa.String(68), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name=op.f("fk_organizational_units_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizational_units")),
    )
    op.create_index(op.f("ix_organizational_units_organization_id"), "organizational_units", ["organization_id"])
    op.create_index(op.f("ix_organizational_units_parent_id"), "organizational_units", ["parent_id"])
    op.create_table(
        "regions",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_regions")),
    )


def downgrade() -> None:
    op.drop_table("regions")
    op.drop_table("organizational_units")
    op.drop_table("organizations")
    op.drop_table("access_keys")
    op.drop_table("accounts")
