"""items.text_*: article pages wanted by the enrichment stage, a durable queue

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs, never batch mode: on SQLite batch mode recreates the table, and
    # dropping the old ``items`` cascades (foreign keys are on) to every alert and match.
    # Items stored before this revision want nothing (NULL): their polls are over.
    op.add_column("items", sa.Column("text_state", sa.String(8), nullable=True))
    op.add_column("items", sa.Column("text_due", sa.DateTime(timezone=True), nullable=True))
    op.add_column("items", sa.Column("text_attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("items", sa.Column("text_error", sa.Text(), nullable=True))
    op.add_column("items", sa.Column("text_silent", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index("ix_items_text_state_text_due", "items", ["text_state", "text_due"])


def downgrade() -> None:
    op.drop_index("ix_items_text_state_text_due", table_name="items")
    # ALTER TABLE … DROP COLUMN (SQLite 3.35+), not batch mode, for the reason above.
    for name in ("text_silent", "text_error", "text_attempts", "text_due", "text_state"):
        op.drop_column("items", name)
