"""A loan's next instalment is a dossier's next deadline (kind `repayment`).

Revision ID: 0095_repayment_deadlines
Revises: 0080_scale_indexes

No column changes: the dossiers in repayment or in default get their stored `next_deadline_at` /
`next_deadline_kind` recomputed by the write path's own function (`services.deadlines.refresh`),
as of today in Paris, so that the queue sorts and filters them on the loan's oldest unpaid due
day from the upgrade on (docs/performance.md).
"""
from datetime import datetime, timezone

from alembic import op

revision = "0095_repayment_deadlines"
down_revision = "0080_scale_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from db import models as m
    from rules.calendar import paris_date
    from services.deadlines import refresh
    from states.lifecycle import LOAN_STATES

    refresh(op.get_bind(), m.Dossier.status.in_(LOAN_STATES), paris_date(datetime.now(timezone.utc)))


def downgrade() -> None:
    from db import models as m

    # The revision below knows no `repayment` deadline: those rows are cleared (the next event of
    # each dossier stores its deadline again).
    table = m.Dossier.__table__
    op.get_bind().execute(table.update().where(table.c.next_deadline_kind == "repayment")
                          .values(next_deadline_at=None, next_deadline_kind=None))
