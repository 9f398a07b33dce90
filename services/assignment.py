"""Work sharing (issue 19, part 4): giving a dossier to an officer, and the officers' teams.

`assign_officer` is one command on a dossier like those of `services.commands`: the dossier
read at its version and in the actor's scope (`_Command`), the checks of `rules.assignment`, the
dossier's `officer` column set (the one the lifecycle's `take_for_review` already sets, read by
the queue, the digest and the search), one `assign_officer` event — all in one unit of work.
The state never changes: the event's `state_before` is its `state_after`.

Teams are data of the region (`db.models_teams`): its head (or an administrator, the CLI) makes
them and says who belongs; the queue's « À mon équipe » reads them."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, false, select

from db import models as m
from db.models_auth import User
from db.models_teams import Team, TeamMember
from rules.assignment import NOTE_MAX, Assignee, check_assignment
from rules.errors import InvalidInput, NotAllowed, NotFound, RuleViolation
from rules.text import check_text
from services.clock import Clock
from services.commands import Actor, Outcome
from services.commands.base import _Command, _commit
from services.people import display_name
from services.uow import UnitOfWork
from states.lifecycle import FINAL_STATES, STATE_LABELS

TEAM_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
TEAM_MANAGERS = ("head", "admin")
_ASSIGNEE = select(User.username, User.display_name, User.role, User.regions, User.active)


def _assignee(session, username: str) -> Assignee | None:
    row = session.execute(_ASSIGNEE.where(User.username == username)).first()
    if row is None:
        return None
    return Assignee(row.username, row.display_name or row.username, row.role, tuple(row.regions or ()), row.active)


def _note(raw) -> str | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        raise InvalidInput("note", "note : un texte est attendu.")
    if len(raw) > NOTE_MAX:
        raise InvalidInput("note", f"note : {NOTE_MAX} caractères au plus.")
    return check_text(raw, "note", multiline=True).strip()


def assign_officer(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, officer: str,
                   note: str | None = None, expected_version: int | None = None) -> Outcome:
    """Give the dossier to `officer` (an account name): the head routes it, an officer takes it
    (`officer` is itself) or hands its own over with a note. Refused by a named rule, nothing
    written."""
    if not isinstance(officer, str) or not officer.strip():
        raise InvalidInput("officer", "officer : le chargé ou la chargée de mission à qui affecter le dossier.")
    officer = officer.strip()
    note = _note(note)
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    d = cmd.dossier
    target = _assignee(cmd.session, officer)
    previous = d.officer
    kind = check_assignment(actor_role=actor.role, actor_name=actor.name, region=cmd.programme.region,
                            state_label=STATE_LABELS[d.status], final=d.status in FINAL_STATES,
                            current=previous, current_display=display_name(cmd.session, previous),
                            target=target, target_name=officer, note=note)
    d.officer = officer
    cmd.record("assign_officer", {"officer": officer, "previous": previous, "kind": kind, "note": note})
    _commit(uow, dossier_id)
    return cmd.outcome(officer=officer, officer_name=target.display if target else officer, kind=kind,
                       previous=previous)


def take_dossier(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int,
                 expected_version: int | None = None) -> Outcome:
    """The officer takes an unassigned dossier for itself."""
    return assign_officer(uow=uow, clock=clock, actor=actor, dossier_id=dossier_id, officer=actor.name,
                          expected_version=expected_version)


def officers_for(uow: UnitOfWork, regions: tuple[str, ...] | None) -> list[dict]:
    """The active officers of these regions, by display name: whom a dossier may go to."""
    rows = uow.session.execute(select(User.username, User.display_name, User.regions)
                               .where(User.role == "officer", User.active.is_(True))).all()
    wanted = set(regions or ())
    out = [{"username": r.username, "display_name": r.display_name or r.username, "regions": list(r.regions or ())}
           for r in rows if wanted & set(r.regions or ())]
    return sorted(out, key=lambda o: o["display_name"])


# -- teams -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TeamView:
    code: str
    name: str
    region: str
    members: tuple[tuple[str, str], ...]  # (username, display name)

    def as_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "region": self.region,
                "members": [{"username": u, "display_name": n} for u, n in self.members]}


def _may_manage(actor: Actor, region: str) -> None:
    if actor.role not in TEAM_MANAGERS:
        raise NotAllowed("Seul(e) le ou la chef(fe) de service compose les équipes de sa région.")
    if actor.role == "head" and region not in (actor.regions or ()):
        raise NotAllowed(f"Les équipes de la région {region} relèvent de son ou sa chef(fe) de service.")


def _team(session, code: str) -> Team:
    team = session.scalar(select(Team).where(Team.code == code))
    if team is None:
        raise NotFound("équipe", code)
    return team


def _folded(text: str) -> str:
    """A team name as people tell names apart: « Équipe Nord » and « equipe  nord » are one."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain.casefold()).split())


def create_team(*, uow: UnitOfWork, clock: Clock, actor: Actor, code: str, name: str, region: str) -> TeamView:
    if not isinstance(code, str) or not TEAM_CODE.match(code):
        raise InvalidInput("team_code", "code court : 2 à 40 caractères parmi a-z, 0-9 et « - » (ex. « occ-nord »).")
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        raise InvalidInput("team_name", "nom de l'équipe : 120 caractères au plus, non vide.")
    name = check_text(name, "team_name").strip()
    known = sorted({p.region for p in uow.catalogue.all()})
    if region not in known:
        raise InvalidInput("region", f"région inconnue « {region} » (connues : {', '.join(known)}).")
    _may_manage(actor, region)
    session = uow.session
    if session.scalar(select(Team.id).where(Team.code == code)):
        raise RuleViolation("team_taken", f"Le code court « {code} » est déjà celui d'une équipe.", field="team_code")
    same = [n for n in session.scalars(select(Team.name).where(Team.region == region)) if _folded(n) == _folded(name)]
    if same:
        raise RuleViolation("team_taken", f"La région {region} a déjà une équipe « {same[0]} ».", field="team_name")
    session.add(Team(code=code, name=name, region=region, created_at=clock.now(), created_by=actor.name))
    uow.commit()
    return team_view(uow, code)


def add_member(*, uow: UnitOfWork, clock: Clock, actor: Actor, team: str, username: str) -> TeamView:
    """Put an officer of the team's region in the team (an officer may belong to several)."""
    session = uow.session
    row = _team(session, team)
    _may_manage(actor, row.region)
    who = _assignee(session, username)
    if who is None or who.role != "officer" or row.region not in who.regions:
        raise RuleViolation("assignee_not_officer", f"« {username} » n'est pas chargé(e) de mission de la région "
                            f"{row.region} : il ou elle ne peut pas rejoindre l'équipe {row.name}.", field="username")
    if session.get(TeamMember, (row.id, username)) is None:
        session.add(TeamMember(team_id=row.id, username=username, added_at=clock.now(), added_by=actor.name))
    uow.commit()
    return team_view(uow, team)


def remove_member(*, uow: UnitOfWork, clock: Clock, actor: Actor, team: str, username: str) -> TeamView:
    session = uow.session
    row = _team(session, team)
    _may_manage(actor, row.region)
    session.execute(delete(TeamMember).where(TeamMember.team_id == row.id, TeamMember.username == username))
    uow.commit()
    return team_view(uow, team)


def team_view(uow: UnitOfWork, code: str) -> TeamView:
    row = _team(uow.session, code)
    members = uow.session.execute(select(User.username, User.display_name)
                                  .join(TeamMember, TeamMember.username == User.username)
                                  .where(TeamMember.team_id == row.id)).all()
    return TeamView(row.code, row.name, row.region,
                    tuple(sorted(((u, n or u) for u, n in members), key=lambda m_: m_[1])))


def list_teams(uow: UnitOfWork, region: str | None = None) -> list[TeamView]:
    stmt = select(Team.code).order_by(Team.region, Team.name)
    if region:
        stmt = stmt.where(Team.region == region)
    return [team_view(uow, code) for code in uow.session.scalars(stmt)]


def team_officers_clause(actor: Actor) -> ColumnElement[bool]:
    """The queue's « À mon équipe »: dossiers assigned to a member of one of the actor's teams —
    those it belongs to, and for a head every team of its regions. One uncorrelated subquery
    (a semi-join: no statement per dossier)."""
    teams = select(TeamMember.team_id).where(TeamMember.username == actor.name)
    if actor.role == "head" and actor.regions:
        teams = teams.union(select(Team.id).where(Team.region.in_(actor.regions)))
    elif actor.role not in ("officer", "head"):
        return false()
    members = select(TeamMember.username).where(TeamMember.team_id.in_(teams))
    return m.Dossier.officer.in_(members)


__all__ = ["assign_officer", "take_dossier", "officers_for", "create_team", "add_member", "remove_member",
           "list_teams", "team_view", "team_officers_clause", "TeamView"]
