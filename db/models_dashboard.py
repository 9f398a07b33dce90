"""The dashboard's figures as last computed (issue 16): one row per programme, written by
`services.dashboard.refresh` (the `refresh-dashboard` flow, every 15 minutes) and read by the
dashboard page, so that a page view costs one indexed read whatever the number of dossiers."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base
from db.types import Instant


class DashboardFigures(Base):
    __tablename__ = "dashboard_figures"
    programme_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(Instant)
    # `services.dashboard.ProgrammeFigures.as_json()`: counts as integers, euros as strings.
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
