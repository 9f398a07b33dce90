"""Agents' OpenID Connect identities (e-mail registered by an administrator, provider identity)

Revision ID: 0040_oidc_identities
Revises: 0003_auth
"""
import sqlalchemy as sa
from alembic import op

import db.types

revision = "0040_oidc_identities"
down_revision = "0003_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=True),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("issuer", sa.String(length=500), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("created_at", db.types.Instant(), nullable=False),
        sa.Column("first_sign_in_at", db.types.Instant(), nullable=True),
        sa.Column("last_sign_in_at", db.types.Instant(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
        sa.UniqueConstraint("username"),
        sa.UniqueConstraint("issuer", "subject", name="uq_oidc_identity_issuer_subject"),
    )


def downgrade() -> None:
    op.drop_table("oidc_identities")
