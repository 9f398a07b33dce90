"""The demo's teams (issue 19, part 4): per region one or two teams of officers — the region's
demo officer (`services.users.DEMO_USERS`) and colleagues with accounts of their own, all with
the demo password. Seeded by `usine demo` after its lives (the colleagues instruct nothing of
the generated history: « Mes dossiers » stays the demo officer's), so that the head has someone
to route dossiers to and « À mon équipe » has members. Demo and training workspaces only."""
from __future__ import annotations

from services.assignment import add_member, create_team
from services.commands import Actor
from services.users import DEMO_PASSWORD, create_user, get_user

DEMO_COLLEAGUES = (
    {"username": "agent2.occitanie", "display_name": "Julien Fabre, chargé de mission (Occitanie)",
     "role": "officer", "regions": ["Occitanie"]},
    {"username": "agent3.occitanie", "display_name": "Sophie Lambert, chargée de mission (Occitanie)",
     "role": "officer", "regions": ["Occitanie"]},
    {"username": "agent2.pays-de-la-loire", "display_name": "Antoine Girard, chargé de mission (Pays de la Loire)",
     "role": "officer", "regions": ["Pays de la Loire"]},
    {"username": "agent2.nouvelle-aquitaine", "display_name": "Camille Dupont, chargée de mission (Nouvelle-Aquitaine)",
     "role": "officer", "regions": ["Nouvelle-Aquitaine"]},
)
DEMO_TEAMS = (
    {"code": "occ-ouest", "name": "Équipe Toulouse – Garonne", "region": "Occitanie",
     "members": ("agent.occitanie", "agent2.occitanie")},
    {"code": "occ-est", "name": "Équipe Montpellier – Méditerranée", "region": "Occitanie",
     "members": ("agent3.occitanie",)},
    {"code": "pdl-industrie", "name": "Équipe Industrie du futur", "region": "Pays de la Loire",
     "members": ("agent.pays-de-la-loire", "agent2.pays-de-la-loire")},
    {"code": "naq-udf", "name": "Équipe Usine du futur", "region": "Nouvelle-Aquitaine",
     "members": ("agent.nouvelle-aquitaine", "agent2.nouvelle-aquitaine")},
)
DEMO_ADMIN = Actor("usine-demo", "admin")


def seed_demo_teams(uow_factory, clock) -> list[dict]:
    """The colleagues' accounts and the teams, as the head would compose them; what exists is
    left as it is. Returns the teams with their members."""
    from services.assignment import list_teams

    for spec in DEMO_COLLEAGUES:
        with uow_factory() as uow:
            if get_user(uow, spec["username"]) is None:
                create_user(uow=uow, clock=clock, password=DEMO_PASSWORD, **spec)
    with uow_factory() as uow:
        known = {t.code for t in list_teams(uow)}
    for team in DEMO_TEAMS:
        if team["code"] not in known:
            with uow_factory() as uow:
                create_team(uow=uow, clock=clock, actor=DEMO_ADMIN, code=team["code"], name=team["name"],
                            region=team["region"])
        for username in team["members"]:
            with uow_factory() as uow:
                add_member(uow=uow, clock=clock, actor=DEMO_ADMIN, team=team["code"], username=username)
    with uow_factory() as uow:
        return [t.as_dict() for t in list_teams(uow)]
