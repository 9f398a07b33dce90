"""The demo as its users find it on 15 June 2022: it acted as the seeded accounts (so each
officer finds its dossiers under « Mes dossiers »), the head of service has dossiers waiting on
council sessions still to come, finance has claims to pay, and `load_demo` reports the states
as they stand after its final sweep."""
from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from db import models as m
from rules.calendar import PARIS, is_working_day
from services import users as users_service
from services.demo import DEMO_NOW, demo_cast, load_demo
from services.users import DEMO_USERS, actor_for, get_user
from web.queue import QueueFilters, work_queue

TODAY = DEMO_NOW.astimezone(PARIS).date()


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch):
    """argon2id still, with test-sized costs (the demo seeds its accounts)."""
    monkeypatch.setattr(users_service, "PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _seeded(role: str) -> list[dict]:
    return [u for u in DEMO_USERS if u["role"] == role]


def test_the_demo_acts_as_the_seeded_accounts_and_each_officer_finds_its_dossiers(uow_factory):
    load_demo(uow_factory, dossiers=40, seed=7)
    with uow_factory() as uow:
        s = uow.session
        catalogue = uow.catalogue
        # Staff events are signed by the seeded accounts, and nobody else.
        staff = {role: set(s.scalars(select(m.Event.actor).where(m.Event.role == role).distinct()))
                 for role in ("officer", "head", "finance")}
        for role, actors in staff.items():
            assert actors and actors <= {u["username"] for u in _seeded(role)}, (role, actors)
        officers = set(s.scalars(select(m.Dossier.officer).where(m.Dossier.officer.is_not(None)).distinct()))
        assert officers and officers <= {u["username"] for u in _seeded("officer")}
        # The consultant with an account files its pieces as that account.
        midi = _seeded("consultant")[0]
        assert set(s.scalars(select(m.Event.actor).join(m.Dossier, m.Event.dossier_id == m.Dossier.id)
                             .where(m.Event.role == "consultant", m.Dossier.consultant == midi["consultant"])
                             .distinct())) <= {midi["username"]}

        for spec in _seeded("officer"):
            actor = actor_for(get_user(uow, spec["username"]))
            mine = work_queue(uow, actor, QueueFilters(assigned="me"), TODAY)
            open_here = [p for p in catalogue.all() if p.region in actor.regions
                         and any(w.opens_on <= TODAY <= w.closes_on for w in p.windows)]
            # Pays de la Loire's calls closed in 2021, but its dossiers are still instructed and repaid.
            still_worked = any(p.region in actor.regions and p.id == "pdl-ami-idf-exemple" for p in catalogue.all())
            if open_here or still_worked:
                assert mine["total"] > 0, spec["username"]
                assert {d["officer"] for d in mine["items"]} == {spec["username"]}
            else:
                # agent.nouvelle-aquitaine: its region's programme (naq-udf4) opens in 2024, so on
                # 15 June 2022 no candidacy of it can have been submitted, let alone taken.
                assert mine["total"] == 0, spec["username"]


def test_demo_cast_comes_from_the_seeded_accounts(uow_factory):
    users_service.seed_demo_users(uow_factory)
    cast = demo_cast(uow_factory)
    assert [a.name for a in cast.officers] == [u["username"] for u in _seeded("officer")
                                               if "Occitanie" in u.get("regions", [])]
    assert cast.head.name == _seeded("head")[0]["username"] and cast.head.regions == ("Occitanie",)
    assert cast.finance.name == _seeded("finance")[0]["username"]
    assert cast.consultant("Cabinet Midi Conseil").name == "cabinet.midi"
    assert cast.consultant("Atelier 4.0 Conseil").consultant == "Atelier 4.0 Conseil"
    assert cast.applicant("732829320").name == "entreprise.garonne"


def test_at_the_demo_instant_votes_are_to_come_and_claims_wait_for_finance(uow_factory):
    report = load_demo(uow_factory, dossiers=40, seed=7)
    with uow_factory() as uow:
        s = uow.session
        waiting = s.execute(select(m.Dossier.reference, m.CouncilSession.code, m.CouncilSession.session_date,
                                   m.CouncilSession.agenda_closes_on)
                            .join(m.CouncilSession, m.Dossier.session_id == m.CouncilSession.id)
                            .where(m.Dossier.status == "ready_for_vote")).all()
        assert waiting
        for ref, code, session_date, agenda_closes_on in waiting:
            assert session_date > TODAY, (ref, code, session_date)
        pending = s.scalar(select(func.count()).select_from(m.PaymentClaim).where(m.PaymentClaim.status == "pending"))
        assert pending >= 1
        # Claims waiting for finance were filed recently (finance's silence for two months would
        # mean refusal, CRPA L231-4), and never after the demo instant.
        for claimed_at in s.scalars(select(m.PaymentClaim.claimed_at).where(m.PaymentClaim.status == "pending")):
            assert 0 <= (DEMO_NOW - claimed_at).days <= 60
        # No life goes past the demo instant, and the council votes on (or after) its session's day.
        assert s.scalar(select(func.max(m.Event.at))) <= DEMO_NOW
        sessions = {c.code: c.session_date for c in s.scalars(select(m.CouncilSession))}
        for at, data in s.execute(select(m.Event.at, m.Event.data).where(m.Event.command == "record_vote")):
            assert at.astimezone(PARIS).date() >= sessions[data["session"]]
    told = report["at_demo_instant"]
    assert told["pending_payment_claims"] == pending
    assert sum(v["dossiers"] for v in told["sessions_with_dossiers_to_vote"].values()) == len(waiting)
    assert all(v["upcoming"] for v in told["sessions_with_dossiers_to_vote"].values())


def test_the_report_gives_the_states_after_the_final_sweep(uow_factory):
    report = load_demo(uow_factory, dossiers=24, seed=2021)
    assert report["sweep"]["lapsed"] >= 1  # the final sweep moved a dossier: counts taken before would differ
    with uow_factory() as uow:
        in_db = dict(uow.session.execute(select(m.Dossier.status, func.count()).group_by(m.Dossier.status)).all())
    assert report["by_state"] == dict(sorted(in_db.items()))
    assert report["dossiers"] == sum(in_db.values()) == 24 + 24 // 3
    assert report["by_programme"] == {"occitanie-prif": 24, "pdl-ami-idf-exemple": 8}


def test_the_demo_applicants_dossiers_name_their_own_company(uow_factory):
    from services.users import DEMO_APPLICANT_SIRENS, DEMO_COMPANIES

    load_demo(uow_factory, dossiers=60, seed=7)
    with uow_factory() as uow:
        for siren in DEMO_APPLICANT_SIRENS:
            names = [d.company_facts["name"] for d in uow.session.scalars(select(m.Dossier))
                     if d.company_facts["siren"] == siren]
            assert names, siren
            assert set(names) == {DEMO_COMPANIES[siren]["name"]}
            company = uow.session.scalar(select(m.Company).where(m.Company.siren == siren))
            assert company.name == DEMO_COMPANIES[siren]["name"]


def test_pays_de_la_loire_loans_are_in_every_state_of_a_loan_at_the_demo_instant(uow_factory):
    from services.loans import loan_figures

    report = load_demo(uow_factory, dossiers=12, seed=5, pdl=28)
    assert report["refused"] == []
    with uow_factory() as uow:
        s = uow.session
        pdl = s.scalars(select(m.Dossier).where(m.Dossier.programme_id == "pdl-ami-idf-exemple")).all()
        states = {d.status for d in pdl}
        assert {"instruction", "in_repayment", "in_default", "closed"} <= states
        # every call code is one of the programme's 2019–2021 calls, and the three lines are played
        assert {d.call_code[:8] for d in pdl} <= {"AMI-2019", "AMI-2020", "AMI-2021"}
        assert {d.line for d in pdl} == {1, 2, 3}
        written_off = [d for d in pdl if d.written_off]
        assert written_off and all(d.status == "closed" for d in written_off)
        repaid = [d for d in pdl if d.status == "closed" and d.loan and not d.written_off]
        assert repaid and all(loan_figures(s, d)["outstanding"] == "0.00" for d in repaid)
        # finance has a repayment to record: an instalment due in the last weeks, not yet paid
        from rules.loans import amount_due
        from services.loans import plan_of, repayments_of
        owing = [d for d in pdl if d.status == "in_repayment"
                 and amount_due(plan_of(d), repayments_of(s, d.id), TODAY) > 0]
        assert owing


def test_a_demo_in_june_2025_gives_nouvelle_aquitaine_companies_their_aid_dossiers(uow_factory):
    from datetime import datetime

    as_of = datetime(2025, 6, 15, 9, 0, tzinfo=PARIS)
    report = load_demo(uow_factory, dossiers=12, seed=5, pdl=14, naq_companies=14, as_of=as_of)
    assert report["refused"] == []
    with uow_factory() as uow:
        s = uow.session
        plans = s.scalars(select(m.Dossier).where(m.Dossier.programme_id == "naq-udf4-exemple",
                                                  m.Dossier.plan_id.is_(None))).all()
        assert len(plans) == 14
        aid = s.scalars(select(m.Dossier).where(m.Dossier.plan_id.is_not(None))).all()
        assert aid and {a.plan_id for a in aid} <= {p.id for p in plans if p.status == "closed"}
        # each aid dossier carries out actions of its plan, none covered twice
        for p in plans:
            numbers = [n for a in aid if a.plan_id == p.id for n in a.actions]
            assert len(numbers) == len(set(numbers)) and set(numbers) <= {x["number"] for x in p.actions or []}
        # the Occitanie pathway is over: only its ended dossiers are played
        occ = set(s.scalars(select(m.Dossier.status).where(m.Dossier.programme_id == "occitanie-prif")))
        assert occ <= {"closed", "rejected", "withdrawn", "lapsed"}
        assert s.scalar(select(func.max(m.Event.at))) <= as_of
        # The head planned every session of the three programmes on a working day, as a head would.
        sessions = s.execute(select(m.CouncilSession.code, m.CouncilSession.session_date,
                                    m.CouncilSession.planned_by)).all()
        assert {code.split("-")[1] for code, _, _ in sessions} >= {"PDL", "NAQ"}
        assert [(code, day) for code, day, _ in sessions if not is_working_day(day)] == []
        assert all(planned_by for _, _, planned_by in sessions)
