"""container recipes, the container outputs of images built from them, and the kiln apply document an
image was started by

Revision ID: 0020_container_recipes
Revises: 0020_watermarks
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_container_recipes"
down_revision = "0020_watermarks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "container_recipes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("arn", sa.String(1024), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("arn_name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("major", sa.Integer(), nullable=False),
        sa.Column("minor", sa.Integer(), nullable=False),
        sa.Column("patch", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(1024), nullable=False),
        sa.Column("parent_image", sa.String(1024), nullable=False),
        sa.Column("repository_name", sa.String(1024), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("dockerfile", sa.Text(), nullable=False),
        sa.Column("working_directory", sa.String(1024), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("client_token", sa.String(64), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_container_recipes")),
        sa.UniqueConstraint(
            "account", "arn_name", "major", "minor", "patch", name=op.f("uq_container_recipes_account")
        ),
        sa.UniqueConstraint("arn", name=op.f("uq_container_recipes_arn")),
    )
    op.create_index(op.f("ix_container_recipes_client_token"), "container_recipes", ["client_token"])
    op.create_index("ix_container_recipes_lookup", "container_recipes", ["account", "arn_name"])
    op.add_column("images", sa.Column("output_containers", sa.JSON(), nullable=True))
    op.add_column("images", sa.Column("apply_hash", sa.String(64), nullable=True))
    op.create_index(op.f("ix_images_apply_hash"), "images", ["apply_hash"])


def downgrade() -> None:
    op.drop_index(op.f("ix_images_apply_hash"), table_name="images")
    op.drop_column("images", "apply_hash")
    op.drop_column("images", "output_containers")
    op.drop_table("container_recipes")
