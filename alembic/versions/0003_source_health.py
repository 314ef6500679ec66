"""source health and adaptive schedule (issue 3)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Touches only the ``sources`` table: the adaptive interval, the floor a source asks for
(Cache-Control max-age, RSS ``<ttl>``), its publishing rhythm, the silence notice and the
last parse warning.  All columns are nullable, so existing rows need no backfill.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("poll_interval", "min_interval", "last_new_item", "mean_gap", "silence_noticed", "last_warning")


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("poll_interval", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("min_interval", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_new_item", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("mean_gap", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("silence_noticed", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_warning", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
