"""The head plans council sessions from the workspace, and the sessions list tells, by the
workspace's clock, whether each agenda is still open."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select
from test_web_pages import app, client_for, csrf_of, state_of, text_of, world  # noqa: F401 (fixtures)

from db import models as m


def _plan(client, **values):
    page = client.get("/ui/seances").text
    return client.post("/ui/seances", data={"csrf_token": csrf_of(page), "programme_id": "occitanie-prif", **values})


def _sessions(uow_factory) -> int:
    with uow_factory() as uow:
        return uow.session.scalar(select(func.count()).select_from(m.CouncilSession))


def test_the_head_plans_a_session_from_the_form_and_the_list_says_until_when_its_agenda_is_open(app, world):
    head = client_for(app, "cheffe.occitanie")
    assert "Planifier une séance" in head.get("/ui/seances").text
    done = _plan(head, code="CP-2022-06-24", session_date="2022-06-24", agenda_closes_on="2022-06-17")
    assert done.status_code == 303
    listing = text_of(head.get("/ui/seances").text)
    assert "Séance CP-2022-06-24 planifiée le 24/06/2022" in listing
    assert "CP-2022-06-24 planifiée Parcours régional Industrie du Futur" in listing
    assert "24/06/2022 à venir ouvert jusqu'au 17/06/2022" in listing
    assert "occitanie-prif" not in listing
    world.clock.set(world.clock.now() + timedelta(days=3))  # Saturday 18/06: the agenda closed the day before
    head = client_for(app, "cheffe.occitanie")
    assert "ordre du jour clos (le 17/06/2022)" in text_of(head.get("/ui/seances").text)


def test_a_session_on_a_sunday_on_14_july_or_closing_after_its_day_is_refused_beside_the_form(app, world):
    head = client_for(app, "cheffe.occitanie")
    for session_date, closes, said in (
            ("2022-06-26", "2022-06-17", "Date de la séance : le dimanche 26/06/2022 est un week-end"),
            ("2022-07-14", "2022-07-07", "Date de la séance : le jeudi 14/07/2022 est un jour férié"),
            ("2022-06-24", "2022-06-27", "Clôture de l'ordre du jour : le 27/06/2022 doit précéder la séance")):
        refused = _plan(head, code="CP-X", session_date=session_date, agenda_closes_on=closes)
        assert refused.status_code == 422
        alert = re.search(r'<p class="error" role="alert" id="plan-error"[^>]*>(.*?)</p>', refused.text, re.S)
        assert alert and said in text_of(alert.group(1)), refused.text
        assert "[" not in alert.group(1) and "session_date" not in alert.group(1)
        assert 'name="code" required maxlength="64" placeholder="CP-2022-07" value="CP-X"' in refused.text
        assert f'name="session_date" type="date" required value="{session_date}"' in refused.text
    assert _sessions(world.uow_factory) == 0


def test_only_the_head_sees_and_uses_the_planning_form(app, world):
    officer = client_for(app, "agent.occitanie")
    page = officer.get("/ui/seances").text
    assert "Planifier une séance" not in page
    refused = officer.post("/ui/seances", data={"csrf_token": csrf_of(page), "code": "CP-Y", "programme_id": "occitanie-prif",
                                                "session_date": "2022-06-24", "agenda_closes_on": "2022-06-17"})
    assert refused.status_code == 403 and _sessions(world.uow_factory) == 0


def test_a_vote_at_a_planned_session_before_its_day_is_refused_in_plain_french(app, world):
    head = client_for(app, "cheffe.occitanie")
    _plan(head, code="CP-2022-06-24", session_date="2022-06-24", agenda_closes_on="2022-06-17")
    did = world.dossier("ready_for_vote", session="CP-2022-06-24")
    page = head.get("/ui/seances/CP-2022-06-24").text
    assert "Les votes s'enregistrent à partir du jour de la séance" in text_of(page)
    form = {"csrf_token": csrf_of(page), f"outcome_{did}": "approved", f"deliberation_{did}": "CP-2022-06-24-001",
            f"version_{did}": re.search(rf'name="version_{did}" value="(\d+)"', page).group(1)}
    result = text_of(head.post("/ui/seances/CP-2022-06-24/votes", data=form).text)
    assert "0 enregistré, 1 refusé" in result
    assert "règle « séance pas encore tenue » (champ « séance ») : La séance CP-2022-06-24 se tient le 24/06/2022" in result
    assert state_of(world.uow_factory, did) == "ready_for_vote"


def test_a_planned_session_whose_day_has_passed_is_listed_as_held_not_planned(app, world):
    head = client_for(app, "cheffe.occitanie")
    assert _plan(head, code="CP-2022-06-24", session_date="2022-06-24", agenda_closes_on="2022-06-17").status_code == 303
    world.clock.set(world.clock.now() + timedelta(days=10))  # Saturday 25/06: the session sat the day before
    listing = text_of(client_for(app, "cheffe.occitanie").get("/ui/seances").text)
    assert "CP-2022-06-24 tenue Parcours régional Industrie du Futur" in listing
    assert "planifiée" not in listing.split("CP-2022-06-24", 1)[1].split("Parcours", 1)[0]
