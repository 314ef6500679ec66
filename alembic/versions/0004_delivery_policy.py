"""delivery policy state (issue 6): messages table, alerts.hold_reason and alerts.message_id

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

Touches only the ``alerts`` table and the new ``messages`` table, so it does not depend
on what 0002 and 0003 do to ``sources`` and ``items``.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("subscriber", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_subscriber_planned_at"), ["subscriber", "planned_at"], unique=False
        )

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_reason", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("message_id", _ID, nullable=True))
        batch_op.create_index(batch_op.f("ix_alerts_message_id"), ["message_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_message_id_messages"), "messages", ["message_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_alerts_message_id_messages"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_alerts_message_id"))
        batch_op.drop_column("message_id")
        batch_op.drop_column("hold_reason")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_subscriber_planned_at"))

    op.drop_table("messages")
