"""The services end to end on a real database: every command one unit of work, refusals write
nothing, the audit trail is complete."""
from decimal import Decimal

import pytest
from sqlalchemy import select

from db import models as m
from rules.errors import ConcurrencyConflict, InvalidInput, NotAllowed, RuleViolation
from services import commands
from services.audit.verify import verify_dossier
from services.queries import dossier_summary
from services.sweep import sweep
from tests.conftest import POSTGRES_URL
from tests.helpers import COMPANY, Life, row_counts


@pytest.fixture
def life(uow_factory, clock, actors):
    return Life(uow_factory, clock, actors)


def test_a_whole_sme_life_ends_closed_with_the_golden_figures(life, uow_factory):
    life.to_approved()
    life.at("2021-04-20T10:00:00+02:00").do("claim_payment", "applicant", phase=1, kind="final",
                                            invoices=[{"date": "2021-03-10", "days": 5, "day_rate": "1100.00"}])
    life.at("2021-04-22T10:00:00+02:00").do("pay", "finance")
    assert life.dossier().status == "in_payment"
    life.at("2021-05-03T10:05:00+02:00").do("claim_payment", "applicant", phase=2, kind="advance", amount="8400.00")
    life.at("2021-05-05T10:00:00+02:00").do("pay", "finance")
    life.at("2021-11-15T10:00:00+01:00").do("claim_payment", "applicant", phase=2, kind="final", invoices=[
        {"date": "2021-06-30", "days": 10, "day_rate": "1200.00"}, {"date": "2021-10-29", "days": 8, "day_rate": "1200.00"}])
    out = life.at("2021-11-19T10:00:00+01:00").do("pay", "finance")
    assert out.details["paid"] == "2400.00"
    with uow_factory() as uow:
        summary = dossier_summary(uow, life.dossier_id)
        assert verify_dossier(uow.session, life.dossier_id).ok
    assert summary["state"] == "closed"
    assert summary["aid"] == {"phase1": "5500.00", "phase2": "12000.00", "total": "17500.00"}
    assert summary["paid"] == "16300.00"
    assert summary["cancelled_remainder"] == "1200.00"
    assert summary["notifications"]["payment_issued"] == 3
    assert summary["notifications"]["dossier_closed"] == 1


def test_a_refused_transition_changes_nothing(life, uow_factory):
    life.submit()
    before = row_counts(uow_factory)
    with pytest.raises(NotAllowed):
        life.do("take_for_review", "applicant")
    with pytest.raises(NotAllowed):
        life.do("accept_diagnostic", "officer")
    assert row_counts(uow_factory) == before


def test_a_refused_eligibility_changes_nothing_and_names_the_rule(life, uow_factory):
    life.submit(company=COMPANY | {"employees": 5000})
    life.do("take_for_review", "officer")
    before = row_counts(uow_factory)
    with pytest.raises(RuleViolation) as refused:
        life.do("declare_eligible", "officer", consultant="Cabinet", phase1={"days": 5, "day_rate": "1000.00"})
    assert refused.value.rule == "size" and refused.value.field == "company.employees"
    assert row_counts(uow_factory) == before


@pytest.mark.parametrize("company, field, rule", [
    (COMPANY | {"siren": "732829321"}, "company.siren", "siren_checksum"),
    (COMPANY | {"equity": "100.001"}, "company.equity", "invalid_input"),
    (COMPANY | {"employees": -3}, "company.employees", "invalid_input"),
    ({k: v for k, v in COMPANY.items() if k != "region"}, "company.region", "invalid_input"),
])
def test_bad_candidacy_input_names_the_field_and_writes_nothing(life, uow_factory, company, field, rule):
    before = row_counts(uow_factory)
    with pytest.raises(InvalidInput) as bad:
        life.submit(company=company)
    assert (bad.value.field, bad.value.rule) == (field, rule)
    assert row_counts(uow_factory) == before


def test_an_unknown_programme_is_refused_by_name(uow_factory, clock, actors):
    with uow_factory() as uow, pytest.raises(InvalidInput) as bad:
        commands.submit_candidacy(uow=uow, clock=clock, actor=actors["applicant"], programme_id="bretagne-x", company=COMPANY)
    assert bad.value.rule == "unknown_programme" and "bretagne-x" in bad.value.message


def test_negative_days_and_three_decimal_rates_are_refused_naming_the_field(life, uow_factory):
    life.submit()
    life.do("take_for_review", "officer")
    before = row_counts(uow_factory)
    with pytest.raises(InvalidInput) as bad:
        life.do("declare_eligible", "officer", consultant="C", phase1={"days": -5, "day_rate": "1000.00"})
    assert bad.value.field == "phase1.days"
    with pytest.raises(InvalidInput) as bad:
        life.do("declare_eligible", "officer", consultant="C", phase1={"days": 5, "day_rate": "1000.005"})
    assert bad.value.field == "phase1.day_rate"
    assert row_counts(uow_factory) == before


def test_a_stale_version_is_refused_never_overwritten(life, uow_factory, clock, actors):
    life.submit()
    version = life.dossier().version
    life.do("take_for_review", "officer")
    with uow_factory() as uow, pytest.raises(ConcurrencyConflict):
        commands.withdraw(uow=uow, clock=clock, actor=actors["applicant"], dossier_id=life.dossier_id,
                          reason="x", expected_version=version)
    assert life.dossier().status == "eligibility_review"


def test_two_officers_acting_at_once_cannot_both_win(life, uow_factory, clock, actors):
    import threading

    life.submit()
    life.do("take_for_review", "officer")
    results = {}
    barrier = threading.Barrier(2)

    def act(name, fn, **kwargs):
        barrier.wait()
        try:
            with uow_factory() as uow:
                fn(uow=uow, clock=clock, dossier_id=life.dossier_id, **kwargs)
            results[name] = "ok"
        except (ConcurrencyConflict, NotAllowed) as exc:
            results[name] = type(exc).__name__

    threads = [threading.Thread(target=act, args=("withdraw", commands.withdraw),
                                kwargs={"actor": actors["applicant"], "reason": "a"}),
               threading.Thread(target=act, args=("ineligible", commands.declare_ineligible),
                                kwargs={"actor": actors["officer"], "reason": "b"})]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()).count("ok") == 1
    final = life.dossier().status
    assert final == ("withdrawn" if results["withdraw"] == "ok" else "rejected")
    with uow_factory() as uow:
        assert verify_dossier(uow.session, life.dossier_id).ok


def test_every_command_bumps_the_version_even_at_the_instant_of_the_previous_one(life, uow_factory, clock, actors):
    # request_documents changes no column of the dossier but its version: a client holding the
    # version read before it must be refused, even with the clock standing still.
    life.submit()
    life.do("take_for_review", "officer")
    before = life.dossier().version
    life.do("request_documents", "officer", kinds=["rib"])
    assert life.dossier().version == before + 1
    with uow_factory() as uow, pytest.raises(ConcurrencyConflict):
        commands.declare_ineligible(uow=uow, clock=clock, actor=actors["officer"], dossier_id=life.dossier_id,
                                    reason="x", expected_version=before)


@pytest.mark.skipif(not POSTGRES_URL, reason="on SQLite the first reader holds the write lock (BEGIN IMMEDIATE): "
                                             "another transaction cannot commit between its read and its write")
def test_an_event_committed_after_the_dossier_was_read_is_a_conflict_never_a_forked_chain(life, uow_factory, clock,
                                                                                         actors):
    # The chain tip is read with the dossier; another command commits an event in between.
    life.submit()
    life.do("take_for_review", "officer")
    with uow_factory() as late:
        late.dossier(life.dossier_id)  # read: version and chain tip as they are now
        life.do("request_documents", "officer", kinds=["rib"])  # another transaction commits an event
        with pytest.raises(ConcurrencyConflict):
            commands.declare_ineligible(uow=late, clock=clock, actor=actors["officer"], dossier_id=life.dossier_id,
                                        reason="x")
    assert life.dossier().status == "eligibility_review"
    with uow_factory() as uow:
        assert [e.command for e in uow.session.scalars(
            select(m.Event).where(m.Event.dossier_id == life.dossier_id).order_by(m.Event.seq))] == [
            "submit_candidacy", "take_for_review", "request_documents"]
        assert verify_dossier(uow.session, life.dossier_id).ok


def test_two_commands_in_one_unit_of_work_chain_their_events(life, uow_factory, clock, actors):
    # Each command commits; the next one reads the tip the first one wrote, not the one read before.
    life.submit()
    with uow_factory() as uow:
        commands.take_for_review(uow=uow, clock=clock, actor=actors["officer"], dossier_id=life.dossier_id)
        commands.request_documents(uow=uow, clock=clock, actor=actors["officer"], dossier_id=life.dossier_id,
                                   kinds=["rib"])
    with uow_factory() as uow:
        seqs = uow.session.scalars(select(m.Event.seq).where(m.Event.dossier_id == life.dossier_id)
                                   .order_by(m.Event.seq)).all()
        assert seqs == [1, 2, 3]
        assert verify_dossier(uow.session, life.dossier_id).ok


def test_every_change_is_one_chained_event_with_actor_role_and_data(life, uow_factory):
    life.to_approved()
    with uow_factory() as uow:
        events = uow.session.scalars(select(m.Event).where(m.Event.dossier_id == life.dossier_id).order_by(m.Event.seq)).all()
        assert [e.command for e in events] == [
            "submit_candidacy", "take_for_review", "declare_eligible", "provide_documents", "accept_diagnostic",
            "provide_documents", "submit_action_plan", "propose_for_vote", "record_vote"]
        assert all(e.prev_hash == p.hash for p, e in zip(events, events[1:]))
        vote = events[-1]
        assert (vote.role, vote.state_before, vote.state_after) == ("head", "ready_for_vote", "approved")
        assert vote.data["voted"]["total"] == "17500.00" and vote.data["rule_inputs"]["granted_on"] == "2021-04-09"
        assert vote.programme == "occitanie-prif@v1"


def test_de_minimis_counts_the_aids_usine_granted_to_the_same_company(uow_factory, clock, actors):
    first = Life(uow_factory, clock, actors).to_approved(prior=[{"granted_on": "2020-06-15", "amount": "190000.00"}])
    assert first.dossier().aid_total == Decimal("17500.00")
    # Phase 1 (5,500) went under de minimis: 190,000 + 5,500 leaves 4,500 of headroom in 2021.
    second = Life(uow_factory, clock, actors).to_approved(prior=[{"granted_on": "2020-06-15", "amount": "190000.00"}],
                                                          phase1=("5", "1200.00"))
    voted = second.dossier().voted
    assert voted["lines"][0]["aid"] == "4500.00"
    cut = [a for a in voted["adjustments"] if a["rule"] == "de_minimis"]
    assert [(a["phase"], a["base"], a["amount"]) for a in cut] == [(1, "aid", "1500.00")]


def test_a_negative_balance_issues_a_recovery_order(life, uow_factory):
    life.to_approved()
    life.at("2021-05-03T10:05:00+02:00").do("claim_payment", "applicant", phase=2, kind="advance", amount="8400.00")
    life.at("2021-05-05T10:00:00+02:00").do("pay", "finance")
    life.at("2021-11-15T10:00:00+01:00").do("claim_payment", "applicant", phase=2, kind="final",
                                            invoices=[{"date": "2021-06-30", "days": 6, "day_rate": "1200.00"}])
    out = life.at("2021-11-19T10:00:00+01:00").do("pay", "finance")
    assert out.details["recovery"] == "4800.00"  # justified 3,600 − advanced 8,400
    with uow_factory() as uow:
        orders = uow.session.scalars(select(m.RecoveryOrder)).all()
        assert [(o.phase, o.amount) for o in orders] == [(2, Decimal("4800.00"))]
        assert dossier_summary(uow, life.dossier_id)["paid"] == "3600.00"


def test_after_the_payment_deadline_the_remainder_lapses_and_the_dossier_closes(life, uow_factory, clock):
    life.to_approved()
    assert life.dossier().payment_deadline_on.isoformat() == "2023-06-30"
    life.at("2023-06-30T20:00:00+02:00")
    assert sweep(uow_factory=uow_factory, clock=clock).closed_after_deadline == 0
    with pytest.raises(RuleViolation) as late:
        life.at("2023-07-03T09:00:00+02:00").do("claim_payment", "applicant", phase=1, kind="final",
                                                invoices=[{"date": "2021-03-10", "days": 5, "day_rate": "1100.00"}])
    assert late.value.rule == "payment_deadline"
    assert sweep(uow_factory=uow_factory, clock=clock).closed_after_deadline == 1
    d = life.dossier()
    assert d.status == "closed" and d.cancelled_remainder == Decimal("17500.00")


def test_an_adjourned_dossier_stays_ready_for_the_next_session(life):
    life.to_approved  # noqa: B018 (documentation: same path up to the proposal)
    life.at("2021-02-01T10:00:00+01:00").submit()
    life.do("take_for_review", "officer")
    life.do("declare_eligible", "officer", consultant="C", phase1={"days": 5, "day_rate": "1000.00"})
    life.do("provide_documents", "consultant", kinds=["diagnostic_report"])
    life.do("accept_diagnostic", "officer")
    life.do("provide_documents", "applicant", kinds=["action_plan", "phase2_quote"])
    life.do("submit_action_plan", "applicant", phase2={"days": 10, "day_rate": "1000.00"})
    life.do("propose_for_vote", "officer", session="CP-2021-02")
    life.at("2021-02-16T10:00:00+01:00").do("record_vote", "head", session="CP-2021-02", outcome="adjourned")
    assert life.dossier().status == "ready_for_vote"
    version = life.dossier().version
    # Not the session that adjourned it (SPEC §3: "for the next session"), and nothing is written.
    with pytest.raises(RuleViolation) as same_session:
        life.at("2021-02-17T10:00:00+01:00").do("record_vote", "head", session="CP-2021-02", outcome="approved",
                                                deliberation="CP/2021-02/9")
    assert (same_session.value.rule, same_session.value.field) == ("not_allowed", "session")
    assert (life.dossier().status, life.dossier().version) == ("ready_for_vote", version)
    life.at("2021-03-16T10:00:00+01:00").do("record_vote", "head", session="CP-2021-03", outcome="approved",
                                            deliberation="CP/2021-03/4")
    assert life.dossier().status == "approved"


def test_an_officer_cannot_propose_to_a_session_whose_agenda_closed(life, uow_factory):
    other = Life(life.uow_factory, life.clock, life.actors)
    other.at("2021-01-10T10:00:00+01:00").submit()
    other.do("take_for_review", "officer")
    other.do("declare_eligible", "officer", consultant="C", phase1={"days": 5, "day_rate": "1000.00"})
    other.do("provide_documents", "consultant", kinds=["diagnostic_report"])
    other.do("accept_diagnostic", "officer")
    other.do("provide_documents", "applicant", kinds=["action_plan", "phase2_quote"])
    other.do("submit_action_plan", "applicant", phase2={"days": 10, "day_rate": "1000.00"})
    other.do("propose_for_vote", "officer", session="CP-2021-01")  # session 24/01, agenda closes 17/01
    life.at("2021-01-11T10:00:00+01:00").submit()
    for step in ("take_for_review",):
        life.do(step, "officer")
    life.do("declare_eligible", "officer", consultant="C", phase1={"days": 5, "day_rate": "1000.00"})
    life.do("provide_documents", "consultant", kinds=["diagnostic_report"])
    life.do("accept_diagnostic", "officer")
    life.do("provide_documents", "applicant", kinds=["action_plan", "phase2_quote"])
    life.do("submit_action_plan", "applicant", phase2={"days": 10, "day_rate": "1000.00"})
    with pytest.raises(RuleViolation) as refused:
        life.at("2021-01-18T10:00:00+01:00").do("propose_for_vote", "officer", session="CP-2021-01")
    assert refused.value.rule == "agenda_closed"


def test_documents_are_never_overwritten_a_new_version_is_a_new_record(life, uow_factory):
    life.submit()
    life.at("2021-02-02T10:00:00+01:00").do("provide_documents", "applicant", kinds=["kbis"])
    life.do("upload_document", "applicant", kind="kbis", filename="kbis-2021.pdf", content=b"%PDF-1.4 kbis",
            content_type="application/pdf")
    with uow_factory() as uow:
        versions = uow.session.execute(select(m.Document.version, m.Document.sha256, m.Document.uploaded_role)
                                       .where(m.Document.kind == "kbis").order_by(m.Document.version)).all()
    assert [v.version for v in versions] == [1, 2, 3]
    assert len({v.sha256 for v in versions}) == 3


def test_a_refused_document_counts_as_missing(life, uow_factory):
    life.submit()
    life.do("take_for_review", "officer")
    with uow_factory() as uow:
        kbis_id = uow.session.scalar(select(m.Document.id).where(m.Document.kind == "kbis"))
    life.do("review_document", "officer", document_id=kbis_id, decision="refused", reason="Kbis de plus de 3 mois")
    with pytest.raises(RuleViolation) as refused:
        life.do("declare_eligible", "officer", consultant="C", phase1={"days": 5, "day_rate": "1000.00"})
    assert refused.value.rule == "documents_missing" and "extrait Kbis" in refused.value.message


def test_a_draft_is_submitted_later_within_the_window(life):
    life.at("2021-02-01T10:00:00+01:00").do("start_candidacy", "applicant", programme_id="occitanie-prif", company=COMPANY)
    assert life.dossier().status == "draft"
    life.do("submit_candidacy", "applicant", dossier_id=life.dossier_id)
    assert life.dossier().status == "submitted"


def test_a_consultant_may_not_hand_in_the_companys_tax_papers(life):
    life.submit()
    with pytest.raises(NotAllowed):
        life.do("provide_documents", "consultant", kinds=["tax_certificate"])


def test_an_applicant_is_scoped_to_its_company(life, uow_factory, clock):
    life.submit()
    stranger = commands.Actor("Autre entreprise", "applicant", siren="552100554")
    with uow_factory() as uow, pytest.raises(NotAllowed):
        commands.withdraw(uow=uow, clock=clock, actor=stranger, dossier_id=life.dossier_id, reason="x")
