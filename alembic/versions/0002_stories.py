"""story clusters and near-duplicate index (issue 4): stories, story_bands, items/alerts story columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Touches ``items`` and ``alerts`` (new nullable columns, indexes, one unique constraint)
and creates ``stories`` and ``story_bands``.  Items stored before this revision get no
story and no keys: they never re-alert (their ``(source_id, key)`` is unchanged), they
simply are not candidates for folding new copies into.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stories",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("first_item_id", _ID, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stories")),
    )
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stories_last_seen"), ["last_seen"], unique=False)

    op.create_table(
        "story_bands",
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_story_bands_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key", "item_id", name=op.f("pk_story_bands")),
    )
    with op.batch_alter_table("story_bands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_story_bands_item_id"), ["item_id"], unique=False)

    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("story_id", _ID, nullable=True))
        batch_op.add_column(sa.Column("url_key", sa.String(length=48), nullable=True))
        batch_op.add_column(sa.Column("title_hash", sa.String(length=48), nullable=True))
        batch_op.add_column(sa.Column("text_hash", sa.String(length=48), nullable=True))
        batch_op.create_index(batch_op.f("ix_items_story_id"), ["story_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_items_url_key"), ["url_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_items_text_hash"), ["text_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_items_source_id_title_hash"), ["source_id", "title_hash"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_items_story_id_stories"), "stories", ["story_id"], ["id"], ondelete="SET NULL"
        )

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("story_id", _ID, nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_alerts_story_id_rule_subscriber"), ["story_id", "rule", "subscriber"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_story_id_stories"), "stories", ["story_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_alerts_story_id_stories"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_alerts_story_id_rule_subscriber"), type_="unique")
        batch_op.drop_column("story_id")

    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_items_story_id_stories"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_items_source_id_title_hash"))
        batch_op.drop_index(batch_op.f("ix_items_text_hash"))
        batch_op.drop_index(batch_op.f("ix_items_url_key"))
        batch_op.drop_index(batch_op.f("ix_items_story_id"))
        batch_op.drop_column("text_hash")
        batch_op.drop_column("title_hash")
        batch_op.drop_column("url_key")
        batch_op.drop_column("story_id")

    with op.batch_alter_table("story_bands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_story_bands_item_id"))
    op.drop_table("story_bands")

    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stories_last_seen"))
    op.drop_table("stories")
