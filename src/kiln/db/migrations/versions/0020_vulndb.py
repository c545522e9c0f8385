"""vulndb: OSV advisory records by source, and versions seen in the distributions' security suites

Revision ID: 0020_vulndb
Revises: 0020_container_recipes
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_vulndb"
down_revision = "0020_container_recipes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vulndb_sources",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("location", sa.String(2048), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("etag", sa.String(1024), nullable=True),
        sa.Column("last_modified", sa.String(128), nullable=True),
        sa.Column("checked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_vulndb_sources")),
    )
    op.create_table(
        "vulndb_records",
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("id", sa.String(256), nullable=False),
        sa.Column("modified", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["source"], ["vulndb_sources.name"], ondelete="CASCADE",
                                name=op.f("fk_vulndb_records_source_vulndb_sources")),
        sa.PrimaryKeyConstraint("source", "id", name=op.f("pk_vulndb_records")),
    )
    op.create_table(
        "vulndb_packages",
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("record_id", sa.String(256), nullable=False),
        sa.Column("ecosystem", sa.String(256), nullable=False),
        sa.Column("package", sa.String(512), nullable=False),
        sa.ForeignKeyConstraint(["source", "record_id"], ["vulndb_records.source", "vulndb_records.id"],
                                name=op.f("fk_vulndb_packages_source_vulndb_records"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("source", "record_id", "ecosystem", "package", name=op.f("pk_vulndb_packages")),
    )
    op.create_index("ix_vulndb_packages_ecosystem", "vulndb_packages", ["ecosystem", "package"])
    op.create_table(
        "security_suite_versions",
        sa.Column("suite", sa.String(512), nullable=False),
        sa.Column("package", sa.String(512), nullable=False),
        sa.Column("version", sa.String(256), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("suite", "package", "version", name=op.f("pk_security_suite_versions")),
    )


def downgrade() -> None:
    op.drop_table("security_suite_versions")
    op.drop_index("ix_vulndb_packages_ecosystem", table_name="vulndb_packages")
    op.drop_table("vulndb_packages")
    op.drop_table("vulndb_records")
    op.drop_table("vulndb_sources")
