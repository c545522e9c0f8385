"""store_image_changes: per AMI, the sequence number of its last change, kept by SQLite triggers

Revision ID: 0022_image_changes
Revises: 0022_publish_cleanup
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_image_changes"
down_revision = "0022_publish_cleanup"
branch_labels = None
depends_on = None

# (table, the AMI id a changed row names, as NEW./OLD. expressions, a WHEN condition or ""): every row
# DescribeImages reads an AMI from. Trigger names start with "kiln_image_change_" (kiln.store.image_changes
# counts them; keep TRIGGERS there in step when adding one).
_SOURCES = (
    ("store_images", "id", ""),
    ("store_tags", "resource_id", ""),
    ("store_launch_permissions", "image_id", ""),
    ("store_watermarks", "image_id", ""),
    ("image_scans", "image_id", "{row}.image_id IS NOT NULL"),
)
_LOG = ("INSERT OR REPLACE INTO store_image_changes (image_id, seq) VALUES "
        "({image}, (SELECT coalesce(max(seq), 0) + 1 FROM store_image_changes))")


def _trigger(name: str, event: str, table: str, images: list[str], when: str = "") -> str:
    body = "; ".join(_LOG.format(image=image) for image in images)
    condition = f" WHEN {when}" if when else ""
    return f"CREATE TRIGGER kiln_image_change_{name} AFTER {event} ON {table} FOR EACH ROW{condition} BEGIN {body}; END"


def _triggers() -> list[str]:
    made = []
    for table, column, when in _SOURCES:
        made.append(_trigger(f"{table}_insert", "INSERT", table, [f"NEW.{column}"], when.format(row="NEW")))
        made.append(_trigger(f"{table}_delete", "DELETE", table, [f"OLD.{column}"], when.format(row="OLD")))
        # an update may move a row from one AMI to another: both change
        old = f"OLD.{column} IS NOT NULL AND OLD.{column} IS NOT NEW.{column}"
        made.append(_trigger(f"{table}_update_old", "UPDATE", table, [f"OLD.{column}"], old))
        made.append(_trigger(f"{table}_update", "UPDATE", table, [f"NEW.{column}"], when.format(row="NEW")))
    alias = "NEW.image_owner_alias IS NOT OLD.image_owner_alias"
    made.append(_trigger("accounts_alias", "UPDATE OF image_owner_alias", "accounts", ["'*'"], alias))
    made.append(_trigger("accounts_insert", "INSERT", "accounts", ["'*'"], "NEW.image_owner_alias IS NOT NULL"))
    made.append(_trigger("accounts_delete", "DELETE", "accounts", ["'*'"], "OLD.image_owner_alias IS NOT NULL"))
    return made


def upgrade() -> None:
    op.create_table(
        "store_image_changes",
        sa.Column("image_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_store_image_changes")),
    )
    op.create_index(op.f("ix_store_image_changes_seq"), "store_image_changes", ["seq"])
    if op.get_bind().dialect.name == "sqlite":  # elsewhere no reader keeps images in memory (no generation)
        for statement in _triggers():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        names = op.get_bind().execute(sa.text(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'kiln_image_change_%'")).scalars()
        for name in list(names):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index(op.f("ix_store_image_changes_seq"), table_name="store_image_changes")
    op.drop_table("store_image_changes")
