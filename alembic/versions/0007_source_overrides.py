"""operator overrides on sources: enabled/disabled from the CLI, and when a failure streak began

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01

Touches only the ``sources`` table.  ``enabled_override`` is NULL unless an operator ran
``wirewatch sources enable|disable`` against what the config says; ``failing_since`` is
the time of the first failure of the current streak (operators are told after a
configurable time as well as a count).  Both nullable: existing rows need no backfill.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs, never batch mode: on SQLite batch mode recreates the table, and
    # dropping the old ``sources`` cascades (foreign keys are on) to its items and alerts.
    op.add_column("sources", sa.Column("enabled_override", sa.Boolean(), nullable=True))
    op.add_column("sources", sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("failing_since")
        batch_op.drop_column("enabled_override")
