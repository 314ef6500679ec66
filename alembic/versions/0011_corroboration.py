"""alerts held for corroboration; bulletins (story updates, surges)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    # Plain ADD COLUMNs, never batch mode (see 0010): rows queued before this revision
    # wait for nothing (NULL).
    op.add_column("alerts", sa.Column("need_outlets", sa.Integer(), nullable=True))
    op.add_column("alerts", sa.Column("need_languages", sa.Integer(), nullable=True))
    op.add_column("alerts", sa.Column("wait_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("alerts", sa.Column("released", sa.String(16), nullable=True))
    op.create_table(
        "bulletins",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subscriber", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(64), nullable=True),
        sa.Column("story_id", Id, nullable=True),
        sa.Column("payload", Json, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered", Json, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["story_id"], ["stories.id"], name="fk_bulletins_story_id_stories", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_bulletins"),
        sa.UniqueConstraint("subscriber", "key", name="uq_bulletins_subscriber_key"),
    )
    op.create_index("ix_bulletins_status_next_attempt", "bulletins", ["status", "next_attempt"])
    op.create_index("ix_bulletins_kind_rule_created_at", "bulletins", ["kind", "rule", "created_at"])
    op.create_index("ix_bulletins_story_id", "bulletins", ["story_id"])


def downgrade() -> None:
    op.drop_table("bulletins")
    for name in ("released", "wait_until", "need_languages", "need_outlets"):
        op.drop_column("alerts", name)
