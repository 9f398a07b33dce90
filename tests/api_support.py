"""Shared by the tests of the REST API (tests/test_api_*.py): the app over the test database with
the demo users, signed-in clients, and a small world of dossiers built through the API itself.

Import with `from api_support import *` so that the fixtures are visible to pytest."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from db import models as m
from services import users as users_service
from services.users import DEMO_PASSWORD, seed_demo_users

SECRET = "secret-de-test-" + "7" * 48

GARONNE = {"siren": "732829320", "name": "Atelier Garonne SAS", "employees": 45, "equity": "200000.00",
           "region": "Occitanie", "first_fy_months": 24, "in_difficulty": False, "tax_social_up_to_date": True,
           "activity": "industrial"}
GIRONDE = {"siren": "443061841", "name": "Gironde Usinage SARL", "employees": 30, "equity": "150000.00",
           "region": "Nouvelle-Aquitaine", "first_fy_months": 36, "in_difficulty": False,
           "tax_social_up_to_date": True, "activity": "industrial"}
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

OFFICER, OFFICER_NAQ, HEAD, FINANCE = "agent.occitanie", "agent.nouvelle-aquitaine", "cheffe.occitanie", "finances.occitanie"
AUDITOR, APPLICANT, APPLICANT_NAQ, CONSULTANT, ADMIN = ("audit.occitanie", "entreprise.garonne", "entreprise.gironde",
                                                          "cabinet.midi", "admin")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def fast_passwords(monkeypatch):
    """argon2id still, with test-sized costs: the suite signs in hundreds of times."""
    monkeypatch.setattr(users_service, "PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(users_service, "_DUMMY_HASH", None)


@pytest.fixture
def app(uow_factory, clock, fast_passwords):
    seed_demo_users(uow_factory, clock)
    return create_app(uow_factory=uow_factory, clock=clock, secret_key=SECRET)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


class Session:
    """One signed-in user. Every POST moves the frozen clock one minute on, as real time would."""

    def __init__(self, client: TestClient, clock, username: str, password: str = DEMO_PASSWORD):
        self.client, self.clock, self.username = client, clock, username
        r = client.post("/auth/token", data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def get(self, path: str, **kw):
        return self.client.get(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def post(self, path: str, **kw):
        self.clock.advance(minutes=1)
        return self.client.post(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def command(self, dossier_id: int, name: str, body: dict | None = None, headers: dict | None = None):
        kw = {"json": body} if body is not None else {}
        return self.post(f"/dossiers/{dossier_id}/commands/{name}", headers=headers or {}, **kw)

    def ok(self, dossier_id: int, name: str, body: dict | None = None) -> dict:
        r = self.command(dossier_id, name, body)
        assert r.status_code == 200, (name, r.text)
        return r.json()

    def upload(self, dossier_id: int, kind: str, filename: str, content: bytes, content_type="application/pdf",
               headers: dict | None = None):
        return self.post(f"/dossiers/{dossier_id}/documents", data={"kind": kind},
                         files={"file": (filename, content, content_type)}, headers=headers or {})


@pytest.fixture
def sign_in(client, clock):
    cache: dict[str, Session] = {}

    def _sign_in(username: str) -> Session:
        if username not in cache:
            cache[username] = Session(client, clock, username)
        return cache[username]

    return _sign_in


def submit(session: Session, company: dict, programme: str = "occitanie-prif") -> int:
    r = session.post("/dossiers", json={"programme": programme, "company": company})
    assert r.status_code == 201, r.text
    return r.json()["dossier_id"]


@dataclass
class World:
    """Occitanie: `ready` proposed for vote at session CP-2021-04, `paying` approved with a pending
    phase-1 claim, `fresh` just submitted. Nouvelle-Aquitaine: `naq` submitted by another company."""

    ready: int
    paying: int
    fresh: int
    naq: int
    paying_document: int
    session: str = "CP-2021-04"
    naq_session: str = "CP-NAQ-2024-03"


def to_action_plan(sign_in, clock, dossier_id: int) -> None:
    officer, consultant, applicant = sign_in(OFFICER), sign_in(CONSULTANT), sign_in(APPLICANT)
    officer.ok(dossier_id, "take_for_review")
    officer.ok(dossier_id, "declare_eligible", {"consultant": "Cabinet Midi Conseil",
                                                "phase1": {"days": 5, "day_rate": "1100.00"}})
    consultant.ok(dossier_id, "provide_documents", {"kinds": ["diagnostic_report"]})
    officer.ok(dossier_id, "accept_diagnostic")
    applicant.ok(dossier_id, "provide_documents", {"kinds": ["action_plan", "phase2_quote"]})
    applicant.ok(dossier_id, "submit_action_plan", {"phase2": {"days": 20, "day_rate": "1300.00"}})


@pytest.fixture
def world(sign_in, clock, uow_factory) -> World:
    applicant, officer, head = sign_in(APPLICANT), sign_in(OFFICER), sign_in(HEAD)
    clock.set(at("2024-03-01T10:00:00+01:00"))
    naq = submit(sign_in(APPLICANT_NAQ), GIRONDE, "naq-udf4")
    clock.set(at("2021-02-01T10:00:00+01:00"))
    ready, paying, fresh = submit(applicant, GARONNE), submit(applicant, GARONNE), submit(applicant, GARONNE)
    for d in (ready, paying):
        to_action_plan(sign_in, clock, d)
    clock.set(at("2021-03-25T09:00:00+01:00"))
    for d in (ready, paying):
        officer.ok(d, "propose_for_vote", {"session": "CP-2021-04"})
    clock.set(at("2021-04-09T14:00:00+02:00"))
    head.ok(paying, "record_vote", {"session": "CP-2021-04", "outcome": "approved", "deliberation": "CP/2021-04/17"})
    clock.set(at("2021-04-20T10:00:00+02:00"))
    applicant.ok(paying, "claim_payment", {"phase": 1, "kind": "final",
                                           "invoices": [{"date": "2021-03-10", "days": 5, "day_rate": "1100.00"}]})
    # A council session of Nouvelle-Aquitaine (its programme file does not let a dossier reach
    # the vote yet: the session is recorded as the agenda builder would).
    with uow_factory() as uow:
        uow.session.add(m.CouncilSession(code="CP-NAQ-2024-03", programme_id="naq-udf4",
                                         session_date=date(2024, 3, 28), agenda_closes_on=date(2024, 3, 21),
                                         created_at=clock.now()))
        uow.commit()
    paying_document = officer.get(f"/dossiers/{paying}/documents").json()[0]["id"]
    return World(ready=ready, paying=paying, fresh=fresh, naq=naq, paying_document=paying_document)


def counts(uow_factory) -> dict:
    """What a refused or read-only request must leave unchanged."""
    with uow_factory() as uow:
        s = uow.session
        return {
            "events": s.scalar(select(func.count()).select_from(m.Event)),
            "dossiers": s.scalar(select(func.count()).select_from(m.Dossier)),
            "documents": s.scalar(select(func.count()).select_from(m.Document)),
            "claims": s.scalar(select(func.count()).select_from(m.PaymentClaim)),
            "payments": s.scalar(select(func.count()).select_from(m.Payment)),
            "versions": tuple(s.scalars(select(m.Dossier.version).order_by(m.Dossier.id))),
            "states": tuple(s.scalars(select(m.Dossier.status).order_by(m.Dossier.id))),
        }


__all__ = ["SECRET", "GARONNE", "GIRONDE", "PDF", "OFFICER", "OFFICER_NAQ", "HEAD", "FINANCE", "AUDITOR", "APPLICANT",
           "APPLICANT_NAQ", "CONSULTANT", "ADMIN", "at", "fast_passwords", "app", "client", "Session", "sign_in",
           "submit", "World", "to_action_plan", "world", "counts"]
