"""The pure rules the commands and the audit replay share (issue 15): what a claim is paid, when
a dossier is settled, what is cancelled at closing, the expense window and the payment deadline,
the de minimis amounts a vote grants, a dossier's loan from its vote, the deadlines of a request
for pieces, and the lifecycle fired on a recorded move. No database: plain values in, plain
values out."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from rules import loans, settlement
from rules.documents import reminder_due_on, request_lapses_on
from rules.errors import NotAllowed
from states.lifecycle import GUARDS_PASSED, fire

D = Decimal
ZERO = D("0.00")


def _vote(*lines: dict, by_instrument: bool = False) -> dict:
    record: dict = {"lines": list(lines), "total": "0.00"}
    if by_instrument:
        record["by_instrument"] = True
    return record


def _line(phase: int, aid: str, **extra) -> dict:
    return {"phase": phase, "aid": aid, "legal_basis": "de_minimis", **extra}


LOAN = {"kind": "loan", "principal": "1000.00", "annual_rate": "0", "deferral_months": 0, "instalments": 4,
        "legal_basis": "de_minimis", "gge": {"gge": "80.00"}}


# -- what a claim is paid ---------------------------------------------------------------------------

def test_an_advance_is_paid_as_claimed():
    due = settlement.payment_due(kind="advance", claimed=D("3000.00"), justified_aid=None, voted_aid=D("10000.00"),
                                 net_paid_before=ZERO)
    assert due == settlement.PaymentDue(D("3000.00"))


def test_a_final_claim_is_paid_the_justified_aid_minus_what_the_phase_already_received():
    due = settlement.payment_due(kind="final", claimed=D("0"), justified_aid=D("8000.00"), voted_aid=D("10000.00"),
                                 net_paid_before=D("3000.00"))
    assert due.amount == D("5000.00") and due.recovery is None


def test_a_final_claim_below_what_was_advanced_becomes_a_recovery_order():
    due = settlement.payment_due(kind="final", claimed=D("0"), justified_aid=D("2000.00"), voted_aid=D("10000.00"),
                                 net_paid_before=D("3000.00"))
    assert due.amount == ZERO and due.recovery == D("1000.00")


def test_a_payment_never_takes_the_phase_beyond_what_was_voted():
    due = settlement.payment_due(kind="advance", claimed=D("9000.00"), justified_aid=None, voted_aid=D("10000.00"),
                                 net_paid_before=D("4000.00"))
    assert due.amount == D("6000.00")


def test_a_final_claim_without_a_justified_aid_recovers_what_was_paid():
    due = settlement.payment_due(kind="final", claimed=D("0"), justified_aid=None, voted_aid=D("10000.00"),
                                 net_paid_before=D("2500.00"))
    assert due.recovery == D("2500.00")


# -- settlement and closing -------------------------------------------------------------------------

def test_subsidies_are_settled_once_every_voted_phase_has_its_final_claim_paid():
    voted = _vote(_line(1, "5000.00"), _line(2, "7000.00"))
    assert not settlement.subsidies_settled(voted, {1})
    assert settlement.subsidies_settled(voted, {1, 2})


def test_nothing_voted_is_nothing_settled():
    assert not settlement.subsidies_settled(None, set())
    assert not settlement.subsidies_settled({"lines": []}, {1})


def test_a_loan_only_line_has_no_final_claim_to_wait_for():
    voted = _vote(_line(1, "5000.00"), _line(2, "0.00", loan=LOAN), by_instrument=True)
    assert settlement.subsidies_settled(voted, {1})
    assert not settlement.subsidies_settled(voted, set())


def test_a_loan_is_settled_only_once_disbursed_and_repaid():
    voted = _vote(_line(1, "0.00", loan=LOAN), by_instrument=True)
    assert not settlement.loan_settled(voted, None)
    assert not settlement.loan_settled(voted, D("250.00"))
    assert settlement.loan_settled(voted, ZERO)


def test_a_dossier_without_a_loan_voted_has_its_loan_settled():
    assert settlement.loan_settled(_vote(_line(1, "5000.00")), None)


def test_the_cancelled_remainder_is_the_subsidy_voted_minus_the_net_paid():
    assert settlement.cancelled_remainder(D("10000.00"), D("7500.00")) == D("2500.00")


def test_the_cancelled_remainder_is_never_negative_and_nothing_voted_cancels_nothing():
    assert settlement.cancelled_remainder(D("1000.00"), D("1200.00")) == ZERO
    assert settlement.cancelled_remainder(None, ZERO) == ZERO


# -- voted lines, invoices, windows, deadlines -------------------------------------------------------

def test_a_dossier_of_one_line_answers_to_phase_one_whatever_its_number():
    voted = _vote(_line(2, "5000.00"))
    assert settlement.voted_line(voted, 1)["phase"] == 2
    assert settlement.voted_line(voted, 3) is None
    assert settlement.voted_line(_vote(_line(1, "1.00"), _line(2, "2.00")), 2)["aid"] == "2.00"


def test_invoices_are_days_on_a_phase_vote_and_as_the_line_counts_them_on_an_instrument_vote():
    assert settlement.invoices_in_days(_vote(_line(1, "1.00")), 1)
    voted = _vote(_line(1, "1.00", expense_kind="days"), _line(2, "1.00", expense_kind="investment"),
                  by_instrument=True)
    assert settlement.invoices_in_days(voted, 1)
    assert not settlement.invoices_in_days(voted, 2)
    assert settlement.invoices_in_days(voted, 7)  # not voted: the first line's kind


def test_expenses_count_from_the_submission_to_months_after_the_vote_when_the_programme_says_so():
    window = settlement.expense_window(months_after_vote=18, expense_cutoff=None, submitted_on=date(2024, 1, 10),
                                       voted_on=date(2024, 3, 5))
    assert (window.starts_on, window.ends_on) == (date(2024, 1, 10), date(2025, 9, 5))
    before_vote = settlement.expense_window(months_after_vote=18, expense_cutoff=None,
                                            submitted_on=date(2024, 1, 10), voted_on=None)
    assert before_vote.ends_on is None


def test_expenses_count_up_to_the_programme_cut_off_otherwise():
    window = settlement.expense_window(months_after_vote=None, expense_cutoff=date(2023, 12, 31),
                                       submitted_on=date(2023, 1, 10), voted_on=date(2023, 3, 5))
    assert (window.starts_on, window.ends_on) == (None, date(2023, 12, 31))


def test_the_payment_deadline_is_the_expense_cut_off_plus_the_programme_months_on_a_working_day():
    # 31 December 2023 + 6 months = Sunday 30 June 2024, moved to Monday 1 July.
    assert settlement.payment_deadline(date(2023, 12, 31), 6, shift_to_working_day=True) == date(2024, 7, 1)
    assert settlement.payment_deadline(date(2023, 12, 31), 6, shift_to_working_day=False) == date(2024, 6, 30)
    assert settlement.payment_deadline(None, 6, shift_to_working_day=True) is None
    assert settlement.payment_deadline(date(2023, 12, 31), None, shift_to_working_day=True) is None


def test_a_vote_grants_under_de_minimis_the_subsidies_and_a_loan_at_its_grant_equivalent():
    voted = _vote(_line(1, "5000.00"), _line(2, "0.00", loan=LOAN),
                  {"phase": 3, "aid": "900.00", "legal_basis": "gber"}, by_instrument=True)
    assert settlement.de_minimis_granted(voted) == [D("5000.00"), D("80.00")]
    assert settlement.de_minimis_granted(None) == []


# -- a dossier's loan ------------------------------------------------------------------------------

def test_the_loan_voted_is_the_first_line_that_carries_one_with_its_phase():
    voted = _vote(_line(1, "5000.00"), _line(2, "0.00", loan=LOAN))
    assert loans.voted_loan_terms(voted) == LOAN | {"phase": 2}
    assert loans.voted_loan_terms(_vote(_line(1, "5000.00"))) is None


def test_a_disbursed_loan_is_scheduled_from_its_recorded_terms_and_day():
    plan = loans.schedule_of(LOAN | {"disbursed_on": "2024-01-15"})
    assert [i.due_on for i in plan] == [date(2024, 4, 15), date(2024, 7, 15), date(2024, 10, 15), date(2025, 1, 15)]


def test_a_loan_not_yet_disbursed_reports_its_voted_principal_and_nothing_owed():
    figures = loans.loan_figures(_vote(_line(1, "0.00", loan=LOAN)), None, (), None)
    assert figures is not None
    assert (figures["principal"], figures["outstanding"], figures["instalments"]) == ("1000.00", "0.00", 0)
    assert loans.loan_figures(_vote(_line(1, "5000.00")), None, (), None) is None


def test_a_written_off_loan_has_nothing_more_due_and_says_the_amount_written_off():
    plan = loans.schedule_of(LOAN | {"disbursed_on": "2024-01-15"})
    figures = loans.loan_figures(None, plan, [loans.Repayment(D("250.00"), date(2024, 4, 15))], D("750"))
    assert figures is not None
    assert figures["next_due"] is None and figures["written_off"] == "750.00"
    assert figures["outstanding"] == "750.00"


def test_a_loan_in_default_is_cured_once_nothing_is_due_any_more():
    plan = loans.schedule_of(LOAN | {"disbursed_on": "2024-01-15"})
    late = date(2024, 7, 1)  # the April instalment unpaid for more than 60 days
    assert not loans.default_cured(plan, [], late)
    assert loans.default_cured(plan, [loans.Repayment(D("250.00"), late)], late)


# -- a request for pieces ---------------------------------------------------------------------------

def test_a_request_for_pieces_lapses_the_programme_days_after_it_moved_to_a_working_day():
    # 3 June 2024 + 5 days = Saturday 8 June, moved to Monday 10 June.
    assert request_lapses_on(date(2024, 6, 3), lapse_after_days=5, shift_to_working_day=True) == date(2024, 6, 10)
    assert request_lapses_on(date(2024, 6, 3), lapse_after_days=5, shift_to_working_day=False) == date(2024, 6, 8)


def test_a_reminder_step_is_due_its_days_after_the_request():
    assert reminder_due_on(date(2024, 6, 3), 30, shift_to_working_day=True) == date(2024, 7, 3)
    assert reminder_due_on(date(2024, 6, 3), 5, shift_to_working_day=True) == date(2024, 6, 10)


# -- the lifecycle on a recorded move ---------------------------------------------------------------

def test_a_recorded_move_fires_through_the_lifecycle_with_its_guards_taken_as_passed():
    assert fire("approved", "pay", role="finance", guards=GUARDS_PASSED, shape="diagnostic") == "in_payment"
    assert fire("in_payment", "pay", role="finance", guards=GUARDS_PASSED, shape="diagnostic") == "in_payment"


def test_a_recorded_move_by_the_wrong_role_is_refused_by_the_lifecycle_even_with_guards_passed():
    with pytest.raises(NotAllowed):
        fire("approved", "pay", role="applicant", guards=GUARDS_PASSED, shape="diagnostic")
    with pytest.raises(NotAllowed):
        fire("submitted", "pay", role="finance", guards=GUARDS_PASSED, shape="diagnostic")


def test_a_command_that_forgets_a_guard_still_fails_rather_than_passing_it():
    with pytest.raises(KeyError):
        fire("approved", "pay", role="finance", guards={}, shape="diagnostic")

