"""The officers' teams of a region (work sharing): the head of service composes them here, as
`usine users teams` does from the console — thin shells over `services.assignment`. A refusal is
shown beside the form that caused it (422), the form keeping what was typed; nothing is written."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from rules.errors import NotFound, RuleViolation
from services.assignment import (
    TEAM_MANAGERS,
    add_member,
    create_team,
    list_teams,
    officers_for,
    remove_member,
    team_view,
)
from web.app import PREFIX, render
from web.auth import Forbidden, WebUser, current_user, flash, writer
from web.routes_dossier import refusal_text

router = APIRouter()
TeamCode = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-z0-9-]+$")]


def _managers(user: WebUser) -> None:
    if user.role not in TEAM_MANAGERS:
        raise Forbidden("Les équipes sont composées par le ou la chef(fe) de service de la région.")


def _regions(uow, user: WebUser) -> list[str]:
    """The regions whose teams this account composes: its own (a head), or every region (an administrator)."""
    known = sorted({p.region for p in uow.catalogue.all()})
    return known if user.actor.regions is None else [r for r in known if r in user.actor.regions]


def _teams_page(request: Request, user: WebUser, *, error: str | None = None, error_at: str | None = None,
                values: dict | None = None, status: int = 200):
    web = request.app.state.web
    with web.uow_factory() as uow:
        regions = _regions(uow, user)
        teams = [t for t in list_teams(uow) if t.region in regions]
        officers = officers_for(uow, tuple(regions))
    items = []
    for t in teams:
        members = {u for u, _ in t.members}
        items.append({"team": t, "candidates": [o for o in officers if t.region in o["regions"]
                                                and o["username"] not in members]})
    # A refusal about a team the page does not show (another region's) is said above the teams.
    shown_at = {"nouvelle-equipe"} | {f"equipe-{t.code}" for t in teams}
    return render(request, "teams.html", title="Équipes", items=items, regions=regions, error=error, shown_at=shown_at,
                  error_at=error_at, values=values or {}, status=status)


@router.get("/equipes")
def teams(request: Request, user: Annotated[WebUser, Depends(current_user)]):
    _managers(user)
    return _teams_page(request, user)


async def _change(request: Request, user: WebUser, work, *, error_at: str, values: dict, done):
    web = request.app.state.web

    def unit():
        with web.uow_factory() as uow:
            return work(uow, web.clock)
    try:
        result = await run_in_threadpool(unit)
    except NotFound:
        raise HTTPException(404, "Équipe introuvable.") from None
    except RuleViolation as exc:
        message = refusal_text(exc)
        return await run_in_threadpool(lambda: _teams_page(request, user, error=message, error_at=error_at,
                                                           values=values, status=422))
    flash(request, "success", done(result))
    return RedirectResponse(f"{PREFIX}/equipes#{error_at}", status_code=303)


def _name_in(team, username: str) -> str:
    return dict(team.members).get(username, username)


def _field(form, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


@router.post("/equipes")
async def create(request: Request, user: Annotated[WebUser, Depends(writer)]):
    """A new team of one of the head's regions (`create_team`)."""
    _managers(user)
    form = await request.form()
    values = {k: _field(form, k) for k in ("code", "name", "region")}
    return await _change(request, user, lambda uow, clock: create_team(
        uow=uow, clock=clock, actor=user.actor, code=values["code"], name=values["name"], region=values["region"]),
        error_at="nouvelle-equipe", values=values, done=lambda team: f"Équipe « {team.name} » créée ({team.region}).")


@router.post("/equipes/{code}/membres")
async def add(request: Request, code: TeamCode, user: Annotated[WebUser, Depends(writer)]):
    """An officer of the team's region joins it (`add_member`)."""
    _managers(user)
    form = await request.form()
    username = _field(form, "username")
    return await _change(request, user, lambda uow, clock: add_member(
        uow=uow, clock=clock, actor=user.actor, team=code, username=username),
        error_at=f"equipe-{code}", values={"team": code, "username": username},
        done=lambda team: f"{_name_in(team, username)} rejoint l'équipe « {team.name} ».")


@router.post("/equipes/{code}/retrait")
async def remove(request: Request, code: TeamCode, user: Annotated[WebUser, Depends(writer)]):
    """An officer leaves the team (`remove_member`); the dossiers given to it stay given."""
    _managers(user)
    form = await request.form()
    username = _field(form, "username")

    def work(uow, clock):
        leaving = dict(team_view(uow, code).members).get(username, username)  # its name, before it leaves
        return remove_member(uow=uow, clock=clock, actor=user.actor, team=code, username=username), leaving
    return await _change(request, user, work, error_at=f"equipe-{code}", values={"team": code},
                         done=lambda out: f"{out[1]} quitte l'équipe « {out[0].name} ».")
