"""Image Builder resources: components, image recipes, infrastructure and distribution configurations

Revision ID: 0004_resources
Revises: 0001_leases
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_resources"
down_revision = "0001_leases"
branch_labels = None
depends_on = None


def _versioned_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("arn", sa.String(1024), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("arn_name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("major", sa.Integer(), nullable=False),
        sa.Column("minor", sa.Integer(), nullable=False),
        sa.Column("patch", sa.Integer(), nullable=False),
    ]


def _configuration_table(table: str) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("arn", sa.String(1024), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("client_token", sa.String(64), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("arn", name=op.f(f"uq_{table}_arn")),
    )
    op.create_index(op.f(f"ix_{table}_client_token"), table, ["client_token"])


def upgrade() -> None:
    op.create_table(
        "components",
        *_versioned_columns(),
        sa.Column("build", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("owner", sa.String(1024), nullable=False),
        sa.Column("description", sa.String(1024), nullable=True),
        sa.Column("change_description", sa.String(1024), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("data_hash", sa.String(64), nullable=False),
        sa.Column("uri", sa.String(2048), nullable=True),
        sa.Column("supported_os_versions", sa.JSON(), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("kms_key_id", sa.String(1024), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("client_token", sa.String(64), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_components")),
        sa.UniqueConstraint(
            "account", "arn_name", "major", "minor", "patch", "build", name=op.f("uq_components_account")
        ),
        sa.UniqueConstraint("arn", name=op.f("uq_components_arn")),
    )
    op.create_index(op.f("ix_components_client_token"), "components", ["client_token"])
    op.create_index("ix_components_lookup", "components", ["account", "arn_name"])

    op.create_table(
        "image_recipes",
        *_versioned_columns(),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(1024), nullable=False),
        sa.Column("description", sa.String(1024), nullable=True),
        sa.Column("parent_image", sa.String(1024), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("block_device_mappings", sa.JSON(), nullable=True),
        sa.Column("working_directory", sa.String(1024), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("ami_tags", sa.JSON(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("client_token", sa.String(64), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_recipes")),
        sa.UniqueConstraint(
            "account", "arn_name", "major", "minor", "patch", name=op.f("uq_image_recipes_account")
        ),
        sa.UniqueConstraint("arn", name=op.f("uq_image_recipes_arn")),
    )
    op.create_index(op.f("ix_image_recipes_client_token"), "image_recipes", ["client_token"])
    op.create_index("ix_image_recipes_lookup", "image_recipes", ["account", "arn_name"])

    _configuration_table("infrastructure_configurations")
    _configuration_table("distribution_configurations")


def downgrade() -> None:
    op.drop_table("distribution_configurations")
    op.drop_table("infrastructure_configurations")
    op.drop_table("image_recipes")
    op.drop_table("components")
