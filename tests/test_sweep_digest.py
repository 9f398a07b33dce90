"""The officers' daily digest: their dossiers with a deadline in the next 7 days, once a day,
on working days."""
from __future__ import annotations

from datetime import datetime

from services import commands
from services.clock import FrozenClock
from services.digest import queue_daily_digests
from tests.helpers import Life
from tests.sweep_support import dossiers_with_open_request, notifications, run


def at(iso: str) -> FrozenClock:
    return FrozenClock(datetime.fromisoformat(iso))


def test_each_officer_gets_their_dossiers_with_a_deadline_within_seven_days(uow_factory, clock, actors):
    soon, later = dossiers_with_open_request(uow_factory, clock, actors, count=2,
                                             requested_at="2021-03-01T10:00:00+01:00")
    # The second dossier's documents arrive: no deadline left for it.
    run(uow_factory, clock, "2021-03-05T10:00:00+01:00", commands.provide_documents, actors["applicant"],
        dossier_id=later, kinds=["tax_certificate"])
    assert queue_daily_digests(uow_factory=uow_factory, clock=at("2021-03-23T07:30:00+01:00")).queued == 0
    report = queue_daily_digests(uow_factory=uow_factory, clock=at("2021-03-24T07:30:00+01:00"))
    assert (report.officers, report.items, report.queued) == (1, 1, 1)
    [digest] = notifications(uow_factory, "daily_digest")
    with uow_factory() as uow:
        reference = uow.dossier(soon).reference
    assert digest.subject == "Vos échéances du 24 mars 2021 : 1 dossier"
    assert digest.recipient_address == "m.martin@agents.usine.invalid"
    assert "Bonjour M. Martin, chargé de mission," in digest.body_text
    assert (f"{reference} — Atelier 1 SAS (instruction de recevabilité) : échéance le 31 mars 2021 — "
            "pièces demandées non reçues") in digest.body_text
    # Once a day, however many runs.
    assert queue_daily_digests(uow_factory=uow_factory, clock=at("2021-03-24T12:00:00+01:00")).queued == 0


def test_no_digest_goes_out_on_a_weekend_or_a_public_holiday(uow_factory, clock, actors):
    dossiers_with_open_request(uow_factory, clock, actors, count=1, requested_at="2021-03-01T10:00:00+01:00")
    assert queue_daily_digests(uow_factory=uow_factory, clock=at("2021-03-27T07:30:00+01:00")).skipped_non_working_day
    assert queue_daily_digests(uow_factory=uow_factory, clock=at("2021-03-28T07:30:00+02:00")).queued == 0
    assert queue_daily_digests(uow_factory=uow_factory, clock=at("2021-03-29T07:30:00+02:00")).queued == 1


def test_the_balance_deadline_and_a_silent_payment_claim_appear_in_the_digest(uow_factory, clock, actors):
    life = Life(uow_factory, clock, actors).to_approved()
    life.at("2021-05-10T10:00:00+02:00").do("claim_payment", "applicant", phase=1, kind="final",
                                            invoices=[{"date": "2021-03-10", "days": 5, "day_rate": "1100.00"}])
    # Two months after the claim (10 July 2021), silence would mean refusal.
    report = queue_daily_digests(uow_factory=uow_factory, clock=at("2021-07-05T07:30:00+02:00"))
    assert report.items == 1
    [digest] = notifications(uow_factory, "daily_digest")
    assert "échéance le 10 juillet 2021 — demande de paiement (solde, phase 1) sans réponse" in digest.body_text
    life.at("2021-07-06T10:00:00+02:00").do("pay", "finance")
    # The balance deadline: 30 June 2023 (cut-off + 6 months).
    report = queue_daily_digests(uow_factory=uow_factory, clock=at("2023-06-26T07:30:00+02:00"))
    assert report.items == 1
    latest = notifications(uow_factory, "daily_digest")[-1]
    assert "échéance le 30 juin 2023 — date limite de la demande de solde" in latest.body_text
