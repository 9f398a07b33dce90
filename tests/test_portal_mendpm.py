"""Mends of the applicant portal and of its messages (docs/portal.md, docs/messages.md): every
dossier of the company found in « Mon espace », the unread-message badge and the link to the
messagerie, the mistyped step's French answer, the landing page after signing in."""
from __future__ import annotations

from test_portal_web import csrf_of, signed_in, text_of
from web_support import GARONNE, SECRET, World, seed_users, use_fast_passwords

from services import commands
from web.app import create_standalone_app


def _world(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    world = World(uow_factory)
    seed_users(uow_factory, world.clock)
    return world


def test_a_draft_dossier_started_outside_the_portal_is_listed_in_my_space_with_a_way_to_continue_it(
        uow_factory, monkeypatch):
    world = _world(uow_factory, monkeypatch)
    submitted = world.dossier("submitted")
    draft = world.run(commands.start_candidacy, "entreprise.garonne", programme_id="occitanie-prif",
                      company=GARONNE).dossier_id
    with uow_factory() as uow:
        refs = {did: uow.dossier(did).reference for did in (submitted, draft)}
    app = create_standalone_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    company = signed_in(app, "entreprise.garonne")
    home = company.get("/ui/portail")
    page = text_of(home.text)
    assert refs[draft] in page and refs[submitted] in page
    assert "2 dossiers de l'entreprise" in page
    assert f'href="/ui/portail/dossiers/{refs[draft]}/pieces">Compléter les pièces du brouillon' in home.text
    pieces = company.get(f"/ui/portail/dossiers/{refs[draft]}/pieces")
    assert pieces.status_code == 200
    assert f'href="/ui/dossiers/{draft}">Déposer la candidature depuis la page du dossier' in pieces.text
