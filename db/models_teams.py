"""Work sharing (issue 19): the teams of a region's officers. A team belongs to one region (the
territory whose programmes its members instruct); its members are accounts (`users.username`),
managed by the region's head of service (`services.assignment`)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base
from db.types import Instant


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("region", "name", name="uq_teams_region_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    # What the CLI and the forms name it by: « occ-est », unique across regions.
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    region: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(Instant)
    created_by: Mapped[str] = mapped_column(String(80))


class TeamMember(Base):
    __tablename__ = "team_members"
    # The queue's « À mon équipe » reads the teams of one account, then their members.
    __table_args__ = (Index("ix_team_members_username", "username"),)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    username: Mapped[str] = mapped_column(String(80), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(Instant)
    added_by: Mapped[str] = mapped_column(String(80))
