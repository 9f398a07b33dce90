"""SPEC §4 and the golden cases of §9, on the pure money rules (no database)."""
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from programmes import default_catalogue
from rules.errors import InvalidInput, RuleViolation
from rules.money import (
    InvoiceLine,
    Quote,
    assess_final_claim,
    check_advance,
    check_phase_days,
    compute_aid,
    parse_amount,
)

OCC = default_catalogue().latest("occitanie-prif")
D = Decimal


def aid(quotes, equity="200000.00", size="sme", headroom=None):
    return compute_aid(OCC, size_class=size, quotes=quotes, equity=D(equity),
                       de_minimis_headroom=None if headroom is None else D(headroom),
                       de_minimis_regulation="1407/2013")


def test_golden_1_the_day_rate_is_capped_and_phase_two_is_paid_at_half():
    b = aid({1: Quote(5, D("1100.00")), 2: Quote(20, D("1300.00"))})
    assert b.line(1).eligible_expense == D("5500.00") and b.aid(1) == D("5500.00")
    assert b.line(2).eligible_expense == D("24000.00") and b.aid(2) == D("12000.00")
    assert b.total == D("17500.00")
    assert [a.as_dict() for a in b.adjustments] == [
        {"rule": "day_rate_cap", "phase": 2, "base": "expense", "amount": "2000.00"}]


def test_golden_1_the_phase_two_advance_is_at_most_seventy_percent():
    check_advance(OCC, phase=2, amount=D("8400.00"), voted_aid=D("12000.00"), advances_so_far=D("0"))
    with pytest.raises(RuleViolation) as refused:
        check_advance(OCC, phase=2, amount=D("9000.00"), voted_aid=D("12000.00"), advances_so_far=D("0"))
    assert refused.value.rule == "advance_cap"


def test_advances_together_stay_within_the_cap():
    with pytest.raises(RuleViolation) as refused:
        check_advance(OCC, phase=2, amount=D("0.01"), voted_aid=D("12000.00"), advances_so_far=D("8400.00"))
    assert refused.value.rule == "advance_cap"


def test_phase_one_has_no_advance():
    with pytest.raises(RuleViolation) as refused:
        check_advance(OCC, phase=1, amount=D("100.00"), voted_aid=D("5500.00"), advances_so_far=D("0"))
    assert refused.value.rule == "advance_cap"


def test_golden_1_the_balance_is_recomputed_on_justified_expense():
    a = assess_final_claim(OCC, phase=2, invoices=[InvoiceLine(date(2021, 6, 30), 10, D("1200.00")),
                                                  InvoiceLine(date(2021, 10, 29), 8, D("1200.00"))],
                           voted_aid=D("12000.00"), voted_expense=D("24000.00"))
    assert a.eligible_expense == D("21600.00")
    assert a.justified_aid == D("10800.00")  # minus 8,400 already advanced: balance 2,400


def test_golden_2_the_pathway_cap_cuts_the_latest_phase():
    b = aid({1: Quote(8, D("1200.00")), 2: Quote(25, D("1200.00"))})
    assert (b.aid(1), b.aid(2), b.total) == (D("9600.00"), D("13200.00"), D("22800.00"))
    assert [a.as_dict() for a in b.adjustments] == [
        {"rule": "pathway_cap", "phase": 2, "base": "expense", "amount": "3600.00"}]


def test_golden_3_the_aid_never_exceeds_equity():
    b = aid({1: Quote(5, D("1100.00")), 2: Quote(20, D("1300.00"))}, equity="10000.00")
    assert b.total == D("10000.00")
    assert (b.aid(1), b.aid(2)) == (D("5500.00"), D("4500.00"))
    assert {"rule": "equity_cap", "phase": 2, "base": "aid", "amount": "7500.00"} in [a.as_dict() for a in b.adjustments]


def test_golden_4_an_eti_puts_both_phases_under_de_minimis():
    b = aid({1: Quote(5, D("1100.00")), 2: Quote(20, D("1300.00"))}, size="eti")
    assert [line.legal_basis for line in b.lines] == ["de_minimis", "de_minimis"]
    sme = aid({1: Quote(5, D("1100.00")), 2: Quote(20, D("1300.00"))}, size="sme")
    assert [line.legal_basis for line in sme.lines] == ["de_minimis", "SA.40453"]


def test_golden_6_an_invoice_after_the_cutoff_does_not_count_and_the_reason_is_shown():
    a = assess_final_claim(OCC, phase=2, invoices=[InvoiceLine(date(2022, 12, 31), 10, D("1200.00")),
                                                  InvoiceLine(date(2023, 1, 2), 10, D("1200.00"))],
                           voted_aid=D("12000.00"), voted_expense=D("24000.00"))
    assert a.eligible_expense == D("12000.00") and a.justified_aid == D("6000.00")
    assert [x["date"] for x in a.excluded_lines] == ["2023-01-02"]
    assert "31/12/2022" in a.excluded_lines[0]["reason"]
    assert {"rule": "expense_cutoff", "phase": 2, "base": "expense", "amount": "12000.00"} in [x.as_dict() for x in a.adjustments]


def test_a_claim_with_only_late_expenses_is_accepted_at_zero_with_the_cut_shown():
    a = assess_final_claim(OCC, phase=2, invoices=[InvoiceLine(date(2023, 1, 2), 10, D("1200.00"))],
                           voted_aid=D("12000.00"), voted_expense=D("24000.00"))
    assert a.eligible_expense == D("0") and a.justified_aid == D("0.00")
    assert {"rule": "expense_cutoff", "phase": 2, "base": "expense", "amount": "12000.00"} in [x.as_dict() for x in a.adjustments]


def test_the_day_minimum_counts_the_days_worked_even_after_the_cutoff():
    a = assess_final_claim(OCC, phase=2, invoices=[InvoiceLine(date(2022, 12, 20), 3, D("1200.00")),
                                                  InvoiceLine(date(2023, 1, 5), 3, D("1200.00"))],
                           voted_aid=D("12000.00"), voted_expense=D("24000.00"))
    assert a.eligible_days == 3 and a.eligible_expense == D("3600.00") and a.justified_aid == D("1800.00")


def test_a_final_claim_must_justify_the_five_day_minimum():
    with pytest.raises(RuleViolation) as refused:
        assess_final_claim(OCC, phase=1, invoices=[InvoiceLine(date(2021, 3, 1), 4, D("1000.00"))],
                           voted_aid=D("5500.00"), voted_expense=D("5500.00"))
    assert refused.value.rule == "day_minimum"


def test_golden_7_day_limits_per_phase():
    with pytest.raises(RuleViolation) as short:
        check_phase_days(OCC, 1, 4)
    assert short.value.rule == "day_minimum"
    with pytest.raises(RuleViolation) as long:
        check_phase_days(OCC, 2, 26)
    assert long.value.rule == "day_maximum"
    check_phase_days(OCC, 1, 5)
    check_phase_days(OCC, 2, 25)


def test_golden_8_the_de_minimis_headroom_cuts_phase_one_only():
    fits = aid({1: Quote(5, D("1200.00")), 2: Quote(20, D("1200.00"))}, headroom="10000.00")
    assert (fits.aid(1), fits.aid(2)) == (D("6000.00"), D("12000.00"))
    cut = aid({1: Quote(5, D("1200.00")), 2: Quote(20, D("1200.00"))}, headroom="4000.00")
    assert (cut.aid(1), cut.aid(2), cut.total) == (D("4000.00"), D("12000.00"), D("16000.00"))
    assert [a.as_dict() for a in cut.adjustments] == [{"rule": "de_minimis", "phase": 1, "base": "aid", "amount": "2000.00"}]
    assert "4000.00" in cut.adjustments[0].reason


def test_no_de_minimis_headroom_refuses_with_that_reason():
    with pytest.raises(RuleViolation) as refused:
        aid({1: Quote(5, D("1200.00")), 2: Quote(20, D("1200.00"))}, headroom="0.00")
    assert refused.value.rule == "de_minimis"


@pytest.mark.parametrize("raw, field", [(1.5, "amount"), ("12.345", "amount"), ("-3.00", "amount"), ("abc", "amount"),
                                        ("NaN", "amount")])
def test_amounts_are_decimal_euros_with_two_decimals_at_most(raw, field):
    with pytest.raises(InvalidInput) as bad:
        parse_amount(raw, field)
    assert bad.value.field == "amount"


def test_negative_days_are_refused_naming_the_field():
    with pytest.raises(InvalidInput) as bad:
        Quote.parse({"days": -2, "day_rate": "1000.00"}, "phase1")
    assert bad.value.field == "phase1.days"


money = st.decimals(min_value=D("1.00"), max_value=D("3000.00"), places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(d1=st.integers(5, 40), r1=money, d2=st.integers(5, 25), r2=money,
       equity=st.decimals(min_value=D("0.00"), max_value=D("80000.00"), places=2),
       room=st.decimals(min_value=D("0.01"), max_value=D("60000.00"), places=2), size=st.sampled_from(["sme", "eti"]))
def test_aid_stays_within_every_cap_and_adds_up_to_the_cent(d1, r1, d2, r2, equity, room, size):
    b = compute_aid(OCC, size_class=size, quotes={1: Quote(d1, r1), 2: Quote(d2, r2)}, equity=equity,
                    de_minimis_headroom=room, de_minimis_regulation="1407/2013")
    assert b.total <= equity
    assert sum(line.eligible_expense for line in b.lines) <= D("36000.00")
    for line in b.lines:
        assert line.capped_day_rate <= D("1200.00")
        assert line.aid <= (line.eligible_expense * line.rate).quantize(D("0.01"), rounding="ROUND_HALF_UP")
        assert line.aid >= 0 and line.aid == line.aid.quantize(D("0.01"))
    dm = sum(line.aid for line in b.lines if line.legal_basis == "de_minimis")
    assert dm <= room
    assert b.total == sum(line.aid for line in b.lines)
    # every cut is accounted for: expense before cuts minus cuts gives the eligible expense
    gross = d1 * r1 + d2 * r2
    expense_cuts = sum(a.amount for a in b.adjustments if a.base == "expense")
    assert gross - expense_cuts == sum(line.eligible_expense for line in b.lines)


@settings(max_examples=200, deadline=None)
@given(voted=st.decimals(min_value=D("100.00"), max_value=D("20000.00"), places=2),
       lines=st.lists(st.tuples(st.integers(1, 10), money, st.dates(date(2021, 1, 1), date(2023, 3, 1))), min_size=1, max_size=6))
def test_a_final_claim_never_pays_more_than_voted(voted, lines):
    invoices = [InvoiceLine(d, days, rate) for days, rate, d in lines]
    try:
        a = assess_final_claim(OCC, phase=2, invoices=invoices, voted_aid=voted, voted_expense=voted * 2)
    except RuleViolation as refused:
        assert refused.rule == "day_minimum" and sum(line.days for line in invoices) < 5
        return
    assert D("0") <= a.justified_aid <= voted
    assert sum(line.days for line in invoices) >= 5
    assert all(line.date <= date(2022, 12, 31) for line in invoices if line.date.isoformat() not in
               {x["date"] for x in a.excluded_lines})
