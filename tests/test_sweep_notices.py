"""Notices that concern no single dossier: the AMI window opening and closing (to companies),
the council agenda closing (to officers). Each goes out once, on its day."""
from __future__ import annotations

from datetime import datetime

from services import commands
from services.clock import FrozenClock
from services.sweep import sweep
from tests.sweep_support import company, notifications, run


def at(iso: str) -> FrozenClock:
    return FrozenClock(datetime.fromisoformat(iso))


def test_the_opening_of_the_window_is_announced_once_to_the_companies_of_the_programme(uow_factory, clock, actors):
    # Occitanie's window opens on 1 January 2020. A company started a draft in December; another
    # submitted on the opening day.
    draft = run(uow_factory, clock, "2019-12-18T10:00:00+01:00", commands.start_candidacy, actors["applicant"],
                programme_id="occitanie-prif", company=company(1), de_minimis_prior=[])
    run(uow_factory, clock, "2020-01-01T10:00:00+01:00", commands.submit_candidacy, actors["applicant"],
        programme_id="occitanie-prif", company=company(2), de_minimis_prior=[])
    report = sweep(uow_factory=uow_factory, clock=at("2020-01-02T06:00:00+01:00"))
    assert report.window_notices == 2
    notices = {n.recipient_address: n for n in notifications(uow_factory, "window_opening")}
    assert set(notices) == {"contact@atelier-1.example.fr", "contact@atelier-2.example.fr"}
    with_draft = notices["contact@atelier-1.example.fr"]
    assert with_draft.subject == ("Parcours régional Industrie du Futur — Appel à manifestation d'intérêt ouvert "
                                  "jusqu'au 31 décembre 2022")
    assert f"  - {draft.reference}" in with_draft.body_text
    assert "jusqu'au 31 décembre 2022 inclus" in with_draft.body_text
    assert with_draft.dossier_id is None and with_draft.recipient_role == "applicant"
    assert with_draft.dedupe_key == f"window:occitanie-prif:2020-01-01:opening:{company(1)['siren']}"
    assert "brouillon" not in notices["contact@atelier-2.example.fr"].body_text
    # Later sweeps of the opening week send nothing more; a company that arrives gets its notice.
    assert sweep(uow_factory=uow_factory, clock=at("2020-01-03T06:00:00+01:00")).window_notices == 0
    run(uow_factory, clock, "2020-01-06T10:00:00+01:00", commands.submit_candidacy, actors["applicant"],
        programme_id="occitanie-prif", company=company(3), de_minimis_prior=[])
    assert sweep(uow_factory=uow_factory, clock=at("2020-01-07T06:00:00+01:00")).window_notices == 1
    # A week after the opening, the news is old: nothing.
    run(uow_factory, clock, "2020-01-10T10:00:00+01:00", commands.submit_candidacy, actors["applicant"],
        programme_id="occitanie-prif", company=company(4), de_minimis_prior=[])
    assert sweep(uow_factory=uow_factory, clock=at("2020-01-10T18:00:00+01:00")).window_notices == 0


def test_a_company_with_a_draft_is_warned_once_a_week_before_the_window_closes(uow_factory, clock, actors):
    draft = run(uow_factory, clock, "2022-12-01T10:00:00+01:00", commands.start_candidacy, actors["applicant"],
                programme_id="occitanie-prif", company=company(1), de_minimis_prior=[])
    run(uow_factory, clock, "2022-12-01T11:00:00+01:00", commands.submit_candidacy, actors["applicant"],
        programme_id="occitanie-prif", company=company(2), de_minimis_prior=[])
    assert sweep(uow_factory=uow_factory, clock=at("2022-12-23T06:00:00+01:00")).window_notices == 0
    assert sweep(uow_factory=uow_factory, clock=at("2022-12-24T06:00:00+01:00")).window_notices == 1
    assert sweep(uow_factory=uow_factory, clock=at("2022-12-27T06:00:00+01:00")).window_notices == 0
    [notice] = notifications(uow_factory, "window_closing")
    assert notice.recipient_address == "contact@atelier-1.example.fr"
    assert notice.subject == ("Parcours régional Industrie du Futur — Clôture de l'appel le 31 décembre 2022 : "
                              "candidature non déposée")
    assert f"  - {draft.reference}" in notice.body_text
    assert "au plus tard le 31 décembre 2022" in notice.body_text


def _to_action_plan(uow_factory, clock, actors, n: int, *, with_plan: bool) -> int:
    out = run(uow_factory, clock, "2021-02-01T10:00:00+01:00", commands.submit_candidacy, actors["applicant"],
              programme_id="occitanie-prif", company=company(n), de_minimis_prior=[])
    d = out.dossier_id
    run(uow_factory, clock, "2021-02-03T09:00:00+01:00", commands.take_for_review, actors["officer"], dossier_id=d)
    run(uow_factory, clock, "2021-02-05T09:00:00+01:00", commands.declare_eligible, actors["officer"], dossier_id=d,
        consultant="Cabinet Midi Conseil", phase1={"days": 5, "day_rate": "1100.00"})
    run(uow_factory, clock, "2021-03-12T09:00:00+01:00", commands.provide_documents, actors["consultant"],
        dossier_id=d, kinds=["diagnostic_report"])
    run(uow_factory, clock, "2021-03-15T09:00:00+01:00", commands.accept_diagnostic, actors["officer"], dossier_id=d)
    if with_plan:
        run(uow_factory, clock, "2021-03-20T09:00:00+01:00", commands.provide_documents, actors["applicant"],
            dossier_id=d, kinds=["action_plan", "phase2_quote"])
        run(uow_factory, clock, "2021-03-20T10:00:00+01:00", commands.submit_action_plan, actors["applicant"],
            dossier_id=d, phase2={"days": 20, "day_rate": "1300.00"})
    return d


def test_the_officer_is_reminded_once_of_the_dossiers_to_propose_before_the_agenda_closes(uow_factory, clock, actors):
    proposed = _to_action_plan(uow_factory, clock, actors, 1, with_plan=True)
    ready = _to_action_plan(uow_factory, clock, actors, 2, with_plan=True)
    waiting = _to_action_plan(uow_factory, clock, actors, 3, with_plan=False)
    # Proposing the first one creates session CP-2021-04 on 8 April, agenda closing on 1 April.
    run(uow_factory, clock, "2021-03-25T09:00:00+01:00", commands.propose_for_vote, actors["officer"],
        dossier_id=proposed, session="CP-2021-04")
    assert sweep(uow_factory=uow_factory, clock=at("2021-03-28T06:00:00+02:00")).agenda_reminders == 0
    assert sweep(uow_factory=uow_factory, clock=at("2021-03-29T06:00:00+02:00")).agenda_reminders == 1
    assert sweep(uow_factory=uow_factory, clock=at("2021-03-30T06:00:00+02:00")).agenda_reminders == 0
    [reminder] = notifications(uow_factory, "agenda_closing")
    assert reminder.recipient_role == "officer"
    assert reminder.recipient_address == "m.martin@agents.usine.invalid"
    assert reminder.subject == ("Séance CP-2021-04 du 8 avril 2021 : ordre du jour clos le 1er avril 2021 — "
                                "2 dossiers en plan d'action")
    with uow_factory() as uow:
        ref_ready, ref_waiting = uow.dossier(ready).reference, uow.dossier(waiting).reference
        ref_proposed = uow.dossier(proposed).reference
    assert f"{ref_ready} — Atelier 2 SAS : plan d'action déposé : à proposer au vote" in reminder.body_text
    assert f"{ref_waiting} — Atelier 3 SAS : plan d'action attendu de l'entreprise" in reminder.body_text
    assert ref_proposed not in reminder.body_text
