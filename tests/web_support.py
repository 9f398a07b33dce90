"""Shared by the tests of the web workspace (tests/test_web_*.py): users with test-sized password
costs, dossiers brought to a given state through the real services (as the demo does), and a
small real PDF to upload."""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher

from rules.calendar import PARIS
from services import commands
from services import users as users_service
from services.clock import FrozenClock
from services.users import DEMO_PASSWORD, DEMO_USERS, actor_for, create_user, get_user

SECRET = "secret-de-test-web-" + "5" * 48
DEMO_NOW = datetime(2022, 6, 15, 9, 0, tzinfo=PARIS)
PASSWORD = DEMO_PASSWORD

GARONNE = {"siren": "732829320", "name": "Atelier Garonne SAS", "employees": 45, "equity": "200000.00",
           "region": "Occitanie", "first_fy_months": 24, "in_difficulty": False, "tax_social_up_to_date": True,
           "activity": "industrial", "email": "contact@atelier-garonne.example.fr"}
CONSULTANT = "Cabinet Midi Conseil"


def fast_hasher() -> PasswordHasher:
    """argon2id still, with test-sized costs."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def use_fast_passwords(monkeypatch) -> None:
    monkeypatch.setattr(users_service, "PASSWORD_HASHER", fast_hasher())
    monkeypatch.setattr(users_service, "_DUMMY_HASH", None)


def seed_users(uow_factory, clock, usernames: tuple[str, ...] | None = None) -> None:
    """The demo users (all, or the named ones), with the demo password."""
    for spec in DEMO_USERS:
        if usernames is not None and spec["username"] not in usernames:
            continue
        with uow_factory() as uow:
            if get_user(uow, spec["username"]) is None:
                create_user(uow=uow, clock=clock, password=PASSWORD, **spec)


def actor(uow_factory, username: str):
    with uow_factory() as uow:
        return actor_for(get_user(uow, username))


def small_pdf(title: str) -> bytes:
    """A real one-page PDF (reportlab), as an applicant would upload."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4)
    c.setTitle(title)
    c.drawString(72, 770, title)
    c.drawString(72, 750, "Pièce produite pour les tests du portail Usine.")
    c.showPage()
    c.save()
    return buffer.getvalue()


@dataclass
class World:
    """Dossiers played through the services by the demo users, one minute per command."""

    uow_factory: object
    clock: FrozenClock = field(default_factory=lambda: FrozenClock(DEMO_NOW + timedelta(hours=1)))

    def run(self, fn, username: str, **kwargs):
        self.clock.advance(minutes=1)
        with self.uow_factory() as uow:
            return fn(uow=uow, clock=self.clock, actor=actor(self.uow_factory, username), **kwargs)

    def session_sitting_today(self, code: str) -> None:
        """The session `code`, if new, sitting on the clock's day with its agenda open until that
        day: the world's dossiers are proposed and voted minutes apart, and a vote is never
        recorded before its session's day (`session_not_held`). Written as a row, not planned:
        planning (`services.council.plan_session`) only takes days ahead. A session the world
        made on an earlier day is moved to today (a planned one is left as the head planned it)."""
        from sqlalchemy import select

        from db import models as m
        from rules.calendar import paris_date

        today = paris_date(self.clock.now())
        with self.uow_factory() as uow:
            row = uow.session.scalar(select(m.CouncilSession).where(m.CouncilSession.code == code))
            if row is None:
                uow.session.add(m.CouncilSession(code=code, programme_id="occitanie-prif", session_date=today,
                                                 agenda_closes_on=today, created_at=self.clock.now()))
            elif row.planned_by is None and row.session_date < today:
                row.session_date = row.agenda_closes_on = today
            uow.commit()

    def dossier(self, target: str, *, company: dict | None = None, session: str = "CP-TEST-1",
                phase2_rate: str = "1300.00", invoices: list | None = None) -> int:
        """A new Garonne dossier brought to `target` (submitted … approved, or `claimed`: approved
        with a pending phase-1 final claim)."""
        out = self.run(commands.submit_candidacy, "entreprise.garonne", programme_id="occitanie-prif",
                       company=company or GARONNE)
        did = out.dossier_id
        steps = [
            ("eligibility_review", commands.take_for_review, "agent.occitanie", {}),
            ("diagnostic", commands.declare_eligible, "agent.occitanie",
             {"consultant": CONSULTANT, "phase1": {"days": 5, "day_rate": "1100.00"}}),
            (None, commands.provide_documents, "cabinet.midi", {"kinds": ["diagnostic_report"]}),
            ("action_plan", commands.accept_diagnostic, "agent.occitanie", {}),
            (None, commands.provide_documents, "entreprise.garonne", {"kinds": ["action_plan", "phase2_quote"]}),
            (None, commands.submit_action_plan, "entreprise.garonne", {"phase2": {"days": 20, "day_rate": phase2_rate}}),
            ("ready_for_vote", commands.propose_for_vote, "agent.occitanie", {"session": session}),
            ("approved", commands.record_vote, "cheffe.occitanie",
             {"session": session, "outcome": "approved", "deliberation": f"{session}-D{did}"}),
            ("claimed", commands.claim_payment, "entreprise.garonne",
             {"phase": 1, "kind": "final", "invoices": invoices or [{"date": "2022-06-10", "days": 5, "day_rate": "1300.00"}]}),
        ]
        if target == "submitted":
            return did
        for state, fn, who, kwargs in steps:
            if fn is commands.propose_for_vote:
                self.session_sitting_today(session)
            self.run(fn, who, dossier_id=did, **kwargs)
            if state == target:
                return did
        raise ValueError(target)


def browser_database(tmp, name: str):
    """(url, cleanup) for a browser test's live server: a SQLite file under `tmp`, or — when the
    suite runs on PostgreSQL — a database of its own (`usine_web_<name>_<xdist worker>_<pid>`), dropped
    by `cleanup`."""
    from sqlalchemy import text

    from db.engine import make_engine

    pg = os.environ.get("USINE_TEST_POSTGRES_URL")
    if not pg:
        return f"sqlite:///{tmp / f'{name}.db'}", lambda: None
    # per worker and per process, as tests/conftest.py names its own: two runs at once never meet
    database = f"usine_web_{name}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    admin = make_engine(pg)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{database}"'))

    def cleanup():
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()

    return pg.rsplit("/", 1)[0] + "/" + database, cleanup
