"""Imports every module that declares tables, so that Base.metadata is complete (Alembic,
create_schema). A new concern with its own tables adds its module here."""
from db import (
    models,  # noqa: F401
    models_audit,  # noqa: F401
    models_auth,  # noqa: F401
    models_dashboard,  # noqa: F401
    models_messages,  # noqa: F401
    models_oidc,  # noqa: F401
    models_portal,  # noqa: F401
    models_teams,  # noqa: F401
)
