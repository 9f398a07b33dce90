"""A dossier's state and amounts are written one way (`services.dossier_writes.write_dossiers`),
by the commands and the sweeps alike. The guard (`tests/dossier_write_guard.py`, on in every
test through `tests/conftest.py`) listens to every UPDATE of `dossiers` sent to the database;
these tests play real lives through it and show that it catches a second writer."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text, update

from db import models as m
from services.clock import FrozenClock
from services.dossier_writes import DossierWrite, write_dossiers
from services.scenario import run_file
from services.sweep import sweep
from tests import dossier_write_guard as guard
from tests.helpers import COMPANY, SCENARIOS, Life
from tests.sweep_support import dossier, dossiers_with_open_request, siren_for


def _written(updates) -> set[str]:
    return set().union(*(u.columns for u in updates)) if updates else set()


def test_a_life_from_candidacy_to_payment_writes_its_state_and_amounts_through_the_one_writer(
        uow_factory, clock, actors):
    guard.take()
    life = Life(uow_factory, clock, actors).to_approved()  # submit, declare eligible, …, vote
    life.at("2021-04-20T10:00:00+02:00").do("claim_payment", "applicant", phase=1, kind="final",
                                            invoices=[{"date": "2021-03-10", "days": 5, "day_rate": "1100.00"}])
    life.at("2021-04-22T10:00:00+02:00").do("pay", "finance")
    updates = guard.take()
    assert life.dossier().status == "in_payment" and str(life.dossier().paid_total) == "5500.00"
    assert guard.rogue(updates) == []
    # The writes were seen: the state at every step, the aid voted and the sum paid.
    assert {"status", "aid_total", "paid_total"} <= _written(updates)
    assert sum("status" in u.columns for u in updates) >= 6


def test_the_sweep_lapses_and_closes_dossiers_through_the_same_writer(uow_factory, clock, actors):
    lapsing = dossiers_with_open_request(uow_factory, clock, actors, count=3, requested_at="2021-03-01T10:00:00+01:00")
    approved = Life(uow_factory, clock, actors).to_approved().dossier_id
    guard.take()
    assert sweep(uow_factory=uow_factory, clock=FrozenClock(datetime.fromisoformat("2021-03-31T06:00:00+02:00"))).lapsed == 3
    closing = sweep(uow_factory=uow_factory, clock=FrozenClock(datetime.fromisoformat("2023-07-03T06:00:00+02:00")))
    assert closing.closed_after_deadline == 1
    updates = guard.take()
    assert [dossier(uow_factory, d).status for d in lapsing] == ["lapsed"] * 3
    assert dossier(uow_factory, approved).status == "closed"
    assert guard.rogue(updates) == []
    assert {"status", "cancelled_remainder"} <= _written(updates)


def test_a_loan_repaid_late_is_declared_in_default_by_the_sweep_through_the_same_writer(database_url):
    guard.take()
    result = run_file(SCENARIOS / "pathways" / "golden-13-pdl-zero-rate-loan-default.json", database_url=database_url)
    assert result["expectations"]["failures"] == []
    # disbursed, repaid, declared in default by the second sweep, repaid in full, closed
    assert [(s["do"], s["state"]) for s in result["steps"][-4:]] == [
        ("sweep", "in_repayment"), ("sweep", "in_default"), ("record_repayment", "in_repayment"),
        ("record_repayment", "closed")]
    updates = guard.take()
    assert guard.rogue(updates) == []
    assert {"status", "loan_outstanding", "paid_total"} <= _written(updates)


@pytest.mark.parametrize("rogue", ["core", "orm", "sql"])
def test_a_second_writer_of_the_state_is_caught(rogue, uow_factory, clock, actors):
    """What the guard is for: any other statement that sets a dossier's state is reported, and
    the suite's fixture would fail the test that ran it."""
    dossier_id = Life(uow_factory, clock, actors).submit().dossier_id
    guard.take()
    with uow_factory() as uow:
        if rogue == "core":
            uow.session.execute(update(m.Dossier.__table__).where(m.Dossier.__table__.c.id == dossier_id)
                                .values(status="approved"))
        elif rogue == "orm":  # the flush's own UPDATE … WHERE version = …
            uow.dossier(dossier_id).status = "approved"
        else:
            uow.session.execute(text("UPDATE dossiers SET paid_total = 1 WHERE id = :id"), {"id": dossier_id})
        uow.session.commit()
    caught = guard.rogue(guard.take())
    assert len(caught) == 1
    assert caught[0].columns == ({"paid_total"} if rogue == "sql" else {"status"})


def test_a_change_of_derived_columns_only_is_not_a_state_write(uow_factory, clock, actors):
    dossier_id = Life(uow_factory, clock, actors).submit().dossier_id
    guard.take()
    with uow_factory.engine.begin() as conn:
        conn.execute(update(m.Dossier.__table__).where(m.Dossier.__table__.c.id == dossier_id)
                     .values(next_deadline_kind="session"))
    assert guard.take() == []


def test_a_batch_names_the_dossier_another_writer_changed_first_and_writes_the_others(uow_factory, clock, actors):
    first, second, third = (Life(uow_factory, clock, actors).submit(company={**COMPANY, "siren": siren_for(n)})
                            .dossier_id for n in (1, 2, 3))
    with uow_factory() as uow:
        versions = {d: uow.dossier(d).version for d in (first, second, third)}
    with uow_factory.engine.begin() as conn:  # a command commits on the second one meanwhile
        write_dossiers(conn, [DossierWrite(second, versions[second], versions[second] + 1, {"officer": "Autre"})])
    with uow_factory.engine.begin() as conn:
        unmatched = write_dossiers(conn, [DossierWrite(d, versions[d], versions[d] + 1, {"status": "lapsed"})
                                          for d in (third, second, first)])
    assert (unmatched.count, unmatched.ids) == (1, (second,))
    assert [dossier(uow_factory, d).status for d in (first, second, third)] == ["lapsed", "submitted", "lapsed"]
