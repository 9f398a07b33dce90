"""Work sharing in a real browser (Debian's Chromium through Playwright, the harness of
tests/browser_support.py): the head ticks ten dossiers of the queue's « Non affectés », assigns
them to a colleague in one action and reads ten result lines; then a selection mixing dossiers
that may be assigned and one that may not (a finished dossier) — the refusal is that dossier's
line only, and nothing of it was written. No JavaScript is needed: the checkboxes belong to the
action bar's form (`form="bulk-form"`)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from browser_support import Live, Tab, live_server, served_database
from sqlalchemy import func, select
from web_support import SECRET, World, seed_users

from db import models as m
from services import commands
from services.clock import ShiftedClock
from services.demo_teams import seed_demo_teams

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
COLLEAGUE = "Julien Fabre, chargé de mission (Occitanie)"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with served_database(tmp_path_factory, "assign") as db:
        factory = db.uow_factory
        world = World(factory)
        seed_users(factory, world.clock)
        seed_demo_teams(factory, world.clock)
        ids = {"ten": [world.dossier("submitted") for _ in range(10)],
               "two": [world.dossier("submitted") for _ in range(2)], "finished": world.dossier("submitted")}
        world.run(commands.declare_ineligible, "agent.occitanie", dossier_id=ids["finished"], reason="Hors périmètre.")
        clock = ShiftedClock(world.clock.now() + timedelta(minutes=5))
        from web.app import create_standalone_app

        with live_server(create_standalone_app(uow_factory=factory, clock=clock, secret_key=SECRET)) as server:
            yield Live(server.url, factory, ids)


@pytest.fixture
def head(browser, live, request):
    tab = Tab(browser, live, request.node.name, "cheffe")
    tab.login("cheffe.occitanie")
    yield tab
    tab.close()


def _officer(live: Live, did: int):
    return live.scalar(select(m.Dossier.officer).where(m.Dossier.id == did))


def _result_lines(tab: Tab) -> list[str]:
    return [x.strip() for x in tab.page.locator("#bulk-results li").all_inner_texts()]


def test_the_head_ticks_ten_dossiers_and_assigns_them_in_one_action(head, live):
    head.goto("/ui/dossiers?assigned=none")
    for did in live.ids["ten"]:
        head.page.check(f"#select-{did}")
    head.page.select_option("#bulk-officer", label=COLLEAGUE)
    head.shot("selection")
    head.submit(head.page.get_by_role("button", name="Affecter les dossiers cochés"))
    lines = _result_lines(head)
    head.shot("results")
    assert len(lines) == 10
    assert sorted(lines) == sorted(f"{live.reference(did)} — affecté à {COLLEAGUE}" for did in live.ids["ten"])
    assert "10 dossiers : 10 faits, 0 refusé." in head.page.inner_text("#bulk-summary")
    assert all(_officer(live, did) == "agent2.occitanie" for did in live.ids["ten"])


def test_a_selection_mixing_allowed_and_refused_dossiers_refuses_only_the_one(head, live):
    finished = live.ids["finished"]
    events = live.scalar(select(func.count()).select_from(m.Event).where(m.Event.dossier_id == finished))
    head.goto("/ui/dossiers?closed=1&assigned=none")
    for did in [*live.ids["two"], finished]:
        head.page.check(f"#select-{did}")
    head.page.select_option("#bulk-officer", label=COLLEAGUE)
    head.page.fill("#bulk-note", "Dossiers de la zone de Toulouse.")
    head.submit(head.page.get_by_role("button", name="Affecter les dossiers cochés"))
    lines = _result_lines(head)
    head.shot("mixed")
    assert len(lines) == 3
    for did in live.ids["two"]:
        assert f"{live.reference(did)} — affecté à {COLLEAGUE}" in lines
        assert _officer(live, did) == "agent2.occitanie"
    refused = [x for x in lines if x.startswith(f"{live.reference(finished)} — refusé : ")]
    assert refused and "Le dossier est terminé" in refused[0], lines
    assert head.page.locator("#bulk-results li[data-result='refused']").count() == 1
    assert _officer(live, finished) is None
    assert live.scalar(select(func.count()).select_from(m.Event).where(m.Event.dossier_id == finished)) == events
