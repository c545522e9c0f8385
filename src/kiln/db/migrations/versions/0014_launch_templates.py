"""launch templates: per account and region, with their numbered versions

Revision ID: 0014_launch_templates
Revises: 0013_parameters
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_launch_templates"
down_revision = "0013_parameters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "launch_templates",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("default_version", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("client_token", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_launch_templates")),
        sa.UniqueConstraint("account_id", "region", "name", name=op.f("uq_launch_templates_account_id")),
    )
    op.create_table(
        "launch_template_versions",
        sa.Column("template_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("image_id", sa.String(2048), nullable=True),
        sa.Column("client_token", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.ForeignKeyConstraint(["template_id"], ["launch_templates.id"], ondelete="CASCADE",
                                name=op.f("fk_launch_template_versions_template_id_launch_templates")),
        sa.PrimaryKeyConstraint("template_id", "version", name=op.f("pk_launch_template_versions")),
    )
    op.create_index(op.f("ix_launch_template_versions_image_id"), "launch_template_versions", ["image_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_launch_template_versions_image_id"), "launch_template_versions")
    op.drop_table("launch_template_versions")
    op.drop_table("launch_templates")
