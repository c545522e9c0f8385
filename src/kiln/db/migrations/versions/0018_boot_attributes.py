"""store images: EC2's boot attributes (BootMode, EnaSupport, ImdsSupport, TpmSupport)

Revision ID: 0018_boot_attributes
Revises: 0018_compliance
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_boot_attributes"
down_revision = "0018_compliance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("store_images") as batch:
        batch.add_column(sa.Column("boot_mode", sa.String(16), nullable=True))
        batch.add_column(sa.Column("ena_support", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("imds_support", sa.String(8), nullable=True))
        batch.add_column(sa.Column("tpm_support", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("store_images") as batch:
        for column in ("tpm_support", "imds_support", "ena_support", "boot_mode"):
            batch.drop_column(column)
