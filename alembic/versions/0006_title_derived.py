"""items.title_derived: the feed gave no title, so it was made from the text

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows cannot be told apart after the fact: they keep false (a derived title
    # stored before this revision is still matched as a title, as it was).
    # A plain ADD COLUMN, never batch mode: on SQLite batch mode recreates the table, and
    # dropping the old ``items`` cascades (foreign keys are on) to every alert and match.
    op.add_column("items", sa.Column("title_derived", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("title_derived")
