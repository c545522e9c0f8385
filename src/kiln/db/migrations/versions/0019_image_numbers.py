"""image build numbers per account: images carry their account (backfilled from the ARN) and keep
(account, name, version, build_number) unique instead of (name, version, build_number)

Revision ID: 0019_image_numbers
Revises: 0018_boot_attributes
"""

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0019_image_numbers"
down_revision = "0018_boot_attributes"
branch_labels = None
depends_on = None


def _backfill() -> None:
    """Every image's account is its ARN's fifth field (arn:aws:imagebuilder:REGION:ACCOUNT:image/…)."""
    images = sa.table("images", sa.column("arn", sa.String), sa.column("account", sa.String))
    connection = op.get_bind()
    for (arn,) in connection.execute(sa.select(images.c.arn)).all():
        connection.execute(images.update().where(images.c.arn == arn).values(account=arn.split(":")[4]))


# The tables whose rows cascade from an image's: SQLite's batch mode rebuilds ``images`` (copy, drop,
# rename) with foreign keys on (a migration runs in a transaction, where the pragma cannot be turned
# off), and the drop would delete every row of these. They are kept aside and put back.
_CHILDREN = ("image_workflow_steps", "distribution_outputs")


def _rebuild(change: Callable[[Any], None]) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for table in _CHILDREN:
            op.execute(f"CREATE TEMPORARY TABLE kept_{table} AS SELECT * FROM {table}")
    with op.batch_alter_table("images") as batch:
        change(batch)
    if sqlite:
        for table in _CHILDREN:
            op.execute(f"DELETE FROM {table}")  # whatever survived the drop, so nothing is doubled
            op.execute(f"INSERT INTO {table} SELECT * FROM kept_{table}")
            op.execute(f"DROP TABLE kept_{table}")


def _per_account(batch: Any) -> None:
    batch.alter_column("account", existing_type=sa.String(12), nullable=False)
    batch.drop_constraint(op.f("uq_images_name"), type_="unique")
    batch.create_unique_constraint(op.f("uq_images_account"), ["account", "name", "version", "build_number"])


def _across_accounts(batch: Any) -> None:
    batch.drop_constraint(op.f("uq_images_account"), type_="unique")
    batch.create_unique_constraint(op.f("uq_images_name"), ["name", "version", "build_number"])
    batch.drop_column("account")


def upgrade() -> None:
    op.add_column("images", sa.Column("account", sa.String(12), nullable=True))
    _backfill()
    _rebuild(_per_account)


def downgrade() -> None:
    _rebuild(_across_accounts)
