"""The migration branches joined into one line.

Revision ID: 0200_one_line
Revises: 0004_audit, 0010_account_security, 0040_oidc_identities, 0050_event_metadata,
0070_retention, 0095_repayment_deadlines, 0100_messages, 0110_assignment, 0120_portal

Each concern (API users, audit, OIDC, retention, council calendar, messages, work sharing, the
portal…) had added its own branch from an older revision, so the schema had nine heads and every
upgrade ran to "heads". This revision changes nothing in the schema: it merges them, and every
later migration revises the one head (tests/test_migrations_and_demo.py keeps it to one).
"""

revision = "0200_one_line"
down_revision = ("0004_audit", "0010_account_security", "0040_oidc_identities", "0050_event_metadata",
                 "0070_retention", "0095_repayment_deadlines", "0100_messages", "0110_assignment", "0120_portal")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
