"""« Parcours de l'entreprise »: a company's dossiers (SPEC §11.4) — each dossier's state, aid and
loan outstanding, its de minimis used and left (`services.pathways.company_pathway`), and a
Nouvelle-Aquitaine progress plan's actions with the aid dossier that carries out each. Only the
dossiers of the user's scope are listed; a company with none answers 404."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from db import models as m
from rules.calendar import paris_date
from rules.errors import InvalidInput
from services.pathways import FREEING_STATES, company_pathway
from services.search import in_scope
from web.app import render
from web.auth import WebUser, current_user

router = APIRouter()
THEMES = {"economic": "économique", "social": "social", "environmental": "environnemental"}


@router.get("/entreprises/{siren}")
def company(request: Request, siren: Annotated[str, Path(pattern=r"^\d{9}$")],
            user: Annotated[WebUser, Depends(current_user)]):
    web = request.app.state.web
    today = paris_date(web.clock.now())
    if user.role == "consultant":
        raise HTTPException(404, "Entreprise introuvable.")
    with web.uow_factory() as uow:
        try:
            pathway = company_pathway(uow, siren, on=today)
        except InvalidInput:
            raise HTTPException(404, "Entreprise introuvable.") from None
        visible = {d.id for d in uow.session.query(m.Dossier).filter(m.Dossier.id.in_([r["id"] for r in pathway["dossiers"]]))
                   if in_scope(user.actor, d, uow.catalogue)}
    rows = [r for r in pathway["dossiers"] if r["id"] in visible]
    if not rows:
        raise HTTPException(404, "Entreprise introuvable.")
    plans = []
    for r in rows:
        if not r["plan_actions"]:
            continue
        covering = [a for a in rows if a["plan"] == r["reference"] and a["state"] not in FREEING_STATES]
        actions = [{"number": x["number"], "theme": THEMES.get(x.get("theme"), x.get("theme")), "budget": x.get("budget"),
                    "covered_by": [a for a in covering if x["number"] in (a["actions"] or [])]}
                   for x in r["plan_actions"]]
        plans.append({"dossier": r, "actions": actions})
    return render(request, "company.html", title=f"Parcours de l'entreprise — {pathway['name']}", pathway=pathway,
                  rows=rows, plans=plans, today=today, example=any(r["example"] for r in rows))
