"""story_bands on SQLite: a WITHOUT ROWID table (its primary key is the table)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

A rowid table with a composite primary key is three B-trees on SQLite: the rows by rowid,
the primary key's index, and ``ix_story_bands_item_id``.  Without a rowid the rows live in
the primary key's B-tree, so each band row is written twice instead of three times, and
the table is a third smaller.  The band insert is the largest write of a cold poll (about
30 rows per new item); see benchmarks/RESULTS.md.  PostgreSQL has no such distinction:
nothing changes there.  The rebuild runs in the migration's one transaction, so a kill
leaves the old table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CREATE = """
CREATE TABLE _story_bands_new (
    "key" BIGINT NOT NULL,
    item_id INTEGER NOT NULL,
    CONSTRAINT pk_story_bands PRIMARY KEY ("key", item_id),
    CONSTRAINT fk_story_bands_item_id_items FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE
){options}
"""


def _rebuild(options: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(_CREATE.format(options=options))
    op.execute('INSERT INTO _story_bands_new ("key", item_id) SELECT "key", item_id FROM story_bands ORDER BY 1, 2')
    op.execute("DROP TABLE story_bands")  # its index goes with it
    op.execute("ALTER TABLE _story_bands_new RENAME TO story_bands")
    op.execute("CREATE INDEX ix_story_bands_item_id ON story_bands (item_id)")


def upgrade() -> None:
    _rebuild(" WITHOUT ROWID")


def downgrade() -> None:
    _rebuild("")
