"""one alert per story and subscriber (issue 19): alerts.rules, alerts.unknown_sends,
the unique key (story_id, rule, subscriber) becomes (story_id, subscriber)

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-01

Keeps every existing row.  Each gets ``rules = [rule]``.  Where a story already had
several rows for one subscriber (one per rule, the old model), the oldest keeps the
story and the others keep everything but their ``story_id`` (set NULL, which never
conflicts), so the new key can be created and the history stays listed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rules", _JSON, nullable=True))
        batch_op.add_column(sa.Column("unknown_sends", sa.Integer(), server_default="0", nullable=False))
    build = "jsonb_build_array(rule)" if bind.dialect.name == "postgresql" else "json_array(rule)"
    op.execute(f"UPDATE alerts SET rules = {build}")
    op.execute(
        "UPDATE alerts SET story_id = NULL WHERE story_id IS NOT NULL AND id NOT IN "
        "(SELECT min(id) FROM alerts WHERE story_id IS NOT NULL GROUP BY story_id, subscriber)"
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.alter_column("rules", existing_type=_JSON, nullable=False)
        batch_op.drop_constraint("uq_alerts_story_id_rule_subscriber", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_alerts_story_id_subscriber"), ["story_id", "subscriber"])


def downgrade() -> None:
    # The per-rule key comes back; rows of the new model list their rules in one row,
    # so the routing rule (``rule``) keeps the row and the key holds.
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_alerts_story_id_subscriber"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_alerts_story_id_rule_subscriber"), ["story_id", "rule", "subscriber"]
        )
        batch_op.drop_column("unknown_sends")
        batch_op.drop_column("rules")
