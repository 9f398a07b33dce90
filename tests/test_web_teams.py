"""The head of service composes the officers' teams of its region from the workspace (« Équipes »):
a team created, an officer added and taken out, a refusal shown beside its form with nothing
written — and only its own region's teams, never another's."""
from __future__ import annotations

from sqlalchemy import func, select
from test_web_assign import app, client_for, csrf_of, text_of, world  # noqa: F401 (fixtures)

from db.models_teams import Team, TeamMember


def members_of(world, code: str) -> set[str]:
    with world.uow_factory() as uow:
        return set(uow.session.scalars(select(TeamMember.username).join(Team, Team.id == TeamMember.team_id)
                                       .where(Team.code == code)))


def test_the_head_sees_the_teams_of_its_region_only_with_members_by_their_names(app):
    client = client_for(app, "cheffe.occitanie")
    page = client.get("/ui/equipes")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Équipe Toulouse – Garonne" in text and "Équipe Montpellier – Méditerranée" in text
    assert "Julien Fabre, chargé de mission (Occitanie)" in text
    assert "Équipe Industrie du futur" not in text  # Pays de la Loire's team
    assert "agent2.occitanie</li>" not in page.text  # members by name, not account id
    assert 'href="/ui/equipes"' in client.get("/ui/seances").text  # in the head's navigation


def test_the_head_creates_a_team_then_adds_and_removes_an_officer(app, world):
    client = client_for(app, "cheffe.occitanie")
    page = client.get("/ui/equipes")
    created = client.post("/ui/equipes", data={"csrf_token": csrf_of(page.text), "name": "Équipe Pyrénées",
                                               "code": "occ-pyrenees", "region": "Occitanie"})
    assert created.status_code == 303
    page = client.get(created.headers["location"])
    assert "Équipe « Équipe Pyrénées » créée (Occitanie)." in text_of(page.text)
    added = client.post("/ui/equipes/occ-pyrenees/membres",
                        data={"csrf_token": csrf_of(page.text), "username": "agent3.occitanie"})
    assert added.status_code == 303
    assert members_of(world, "occ-pyrenees") == {"agent3.occitanie"}
    page = client.get(added.headers["location"])
    assert "Sophie Lambert, chargée de mission (Occitanie) rejoint l'équipe « Équipe Pyrénées »." in text_of(page.text)
    removed = client.post("/ui/equipes/occ-pyrenees/retrait",
                          data={"csrf_token": csrf_of(page.text), "username": "agent3.occitanie"})
    assert removed.status_code == 303
    assert members_of(world, "occ-pyrenees") == set()
    assert "Sophie Lambert, chargée de mission (Occitanie) quitte l'équipe" in text_of(client.get("/ui/equipes").text)


def test_a_refused_team_is_explained_beside_its_form_and_nothing_is_written(app, world):
    client = client_for(app, "cheffe.occitanie")
    page = client.get("/ui/equipes")
    with world.uow_factory() as uow:
        before = uow.session.scalar(select(func.count()).select_from(Team))
    taken = client.post("/ui/equipes", data={"csrf_token": csrf_of(page.text), "name": "Doublon",
                                             "code": "occ-est", "region": "Occitanie"})
    assert taken.status_code == 422
    assert 'id="new-team-error"' in taken.text
    assert "(champ « code court ») : Le code court « occ-est » est déjà celui d'une équipe." in text_of(taken.text)
    same_name = client.post("/ui/equipes", data={"csrf_token": csrf_of(page.text), "name": "equipe toulouse - GARONNE",
                                                 "code": "occ-toulouse2", "region": "Occitanie"})
    assert same_name.status_code == 422  # the same name but for case, accents and dashes
    assert ("(champ « nom de l'équipe ») : La région Occitanie a déjà une équipe « Équipe Toulouse – Garonne »."
            in text_of(same_name.text))
    assert 'value="Doublon"' in taken.text  # the form keeps what was typed
    other_region = client.post("/ui/equipes", data={"csrf_token": csrf_of(page.text), "name": "Équipe Nantes",
                                                    "code": "pdl-nantes", "region": "Pays de la Loire"})
    assert other_region.status_code == 422
    assert "relèvent de son ou sa chef(fe) de service" in text_of(other_region.text)
    not_officer = client.post("/ui/equipes/occ-est/membres",
                              data={"csrf_token": csrf_of(page.text), "username": "agent.pays-de-la-loire"})
    assert not_officer.status_code == 422
    assert 'id="team-occ-est-error"' in not_officer.text
    with world.uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Team)) == before
    assert "agent.pays-de-la-loire" not in members_of(world, "occ-est")


def test_officers_and_other_regions_heads_cannot_compose_a_region_s_teams(app, world):
    officer = client_for(app, "agent.occitanie")
    assert officer.get("/ui/equipes").status_code == 403
    assert 'href="/ui/equipes"' not in officer.get("/ui/dossiers").text
    head_pdl = client_for(app, "chef.pays-de-la-loire")
    page = head_pdl.get("/ui/equipes")
    assert "Équipe Toulouse – Garonne" not in text_of(page.text)
    refused = head_pdl.post("/ui/equipes/occ-est/membres",
                            data={"csrf_token": csrf_of(page.text), "username": "agent2.pays-de-la-loire"})
    assert refused.status_code == 422  # said above the teams, the Occitanie team not being shown
    assert 'id="teams-error"' in refused.text
    assert "Les équipes de la région Occitanie relèvent de son ou sa chef(fe) de service" in text_of(refused.text)
    assert "agent2.pays-de-la-loire" not in members_of(world, "occ-est")
    assert head_pdl.post("/ui/equipes/inconnue/membres",
                         data={"csrf_token": csrf_of(page.text), "username": "x"}).status_code == 404
