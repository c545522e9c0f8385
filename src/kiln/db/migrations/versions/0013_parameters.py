"""parameters: SSM Parameter Store (parameters per account and region, their versions and labels)

Revision ID: 0013_parameters
Revises: 0011_sharing
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_parameters"
down_revision = "0011_sharing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ssm_parameters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(1011), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ssm_parameters")),
        sa.UniqueConstraint("account_id", "region", "name", name=op.f("uq_ssm_parameters_account_id")),
    )
    op.create_table(
        "ssm_parameter_versions",
        sa.Column("parameter_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("data_type", sa.String(128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("modified_at", sa.DateTime(), nullable=False),
        sa.Column("modified_by", sa.String(256), nullable=False),
        sa.ForeignKeyConstraint(["parameter_id"], ["ssm_parameters.id"], ondelete="CASCADE",
                                name=op.f("fk_ssm_parameter_versions_parameter_id_ssm_parameters")),
        sa.PrimaryKeyConstraint("parameter_id", "version", name=op.f("pk_ssm_parameter_versions")),
    )
    op.create_table(
        "ssm_parameter_labels",
        sa.Column("parameter_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["parameter_id"], ["ssm_parameters.id"], ondelete="CASCADE",
                                name=op.f("fk_ssm_parameter_labels_parameter_id_ssm_parameters")),
        sa.PrimaryKeyConstraint("parameter_id", "label", name=op.f("pk_ssm_parameter_labels")),
    )


def downgrade() -> None:
    op.drop_table("ssm_parameter_labels")
    op.drop_table("ssm_parameter_versions")
    op.drop_table("ssm_parameters")
