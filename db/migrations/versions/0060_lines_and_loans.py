"""programme lines, calls, pathways and loans (SPEC §11)

Revision ID: 0060_lines_and_loans
Revises: 0001_initial
"""
import sqlalchemy as sa
from alembic import op

import db.types

revision = "0060_lines_and_loans"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dossiers") as batch:
        batch.add_column(sa.Column("line", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("call_code", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("cites_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("plan_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("actions", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("loan", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("loan_outstanding", db.types.Money(), nullable=True))
        batch.add_column(sa.Column("loan_next_due_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("written_off", db.types.Money(), nullable=True))
        batch.create_foreign_key("fk_dossiers_cites_id", "dossiers", ["cites_id"], ["id"])
        batch.create_foreign_key("fk_dossiers_plan_id", "dossiers", ["plan_id"], ["id"])
        batch.create_index("ix_dossiers_call_code", ["call_code"])
        batch.create_index("ix_dossiers_plan_id", ["plan_id"])
        batch.create_index("ix_dossiers_loan_next_due_on", ["loan_next_due_on"])
    op.create_table(
        "repayments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dossier_id", sa.Integer(), nullable=False),
        sa.Column("amount", db.types.Money(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("principal", db.types.Money(), nullable=False),
        sa.Column("interest", db.types.Money(), nullable=False),
        sa.Column("early", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", db.types.Instant(), nullable=False),
        sa.ForeignKeyConstraint(["dossier_id"], ["dossiers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_repayments_dossier_id", "repayments", ["dossier_id"])


def downgrade() -> None:
    op.drop_index("ix_repayments_dossier_id", table_name="repayments")
    op.drop_table("repayments")
    with op.batch_alter_table("dossiers") as batch:
        batch.drop_index("ix_dossiers_loan_next_due_on")
        batch.drop_index("ix_dossiers_plan_id")
        batch.drop_index("ix_dossiers_call_code")
        batch.drop_constraint("fk_dossiers_plan_id", type_="foreignkey")
        batch.drop_constraint("fk_dossiers_cites_id", type_="foreignkey")
        for column in ("written_off", "loan_next_due_on", "loan_outstanding", "loan", "actions", "plan_id",
                       "cites_id", "call_code", "line"):
            batch.drop_column(column)
