from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from programmes import default_catalogue, regulations
from rules.de_minimis import PriorAid, headroom
from rules.eligibility import CompanyFacts, check_eligibility
from rules.errors import InvalidInput, RuleViolation

OCC = default_catalogue().latest("occitanie-prif")
SME = CompanyFacts.parse({"siren": "732829320", "name": "Atelier Garonne SAS", "employees": 45, "equity": "200000.00",
                          "region": "Occitanie", "first_fy_months": 24, "in_difficulty": False,
                          "tax_social_up_to_date": True, "activity": "industrial"})


def refused_rule(company):
    with pytest.raises(RuleViolation) as refused:
        check_eligibility(OCC, company)
    return refused.value.rule


def test_an_industrial_sme_of_occitanie_is_eligible():
    assert check_eligibility(OCC, SME) == "sme"


def test_golden_4_size_classes_by_headcount():
    assert refused_rule(replace(SME, employees=5000)) == "size"
    assert check_eligibility(OCC, replace(SME, employees=4999)) == "eti"
    assert check_eligibility(OCC, replace(SME, employees=250)) == "eti"
    assert check_eligibility(OCC, replace(SME, employees=249)) == "sme"


def test_an_sme_by_headcount_above_both_financial_thresholds_is_an_eti():
    big = replace(SME, turnover=Decimal("60000000.00"), balance_sheet=Decimal("50000000.00"))
    assert check_eligibility(OCC, big) == "eti"
    assert check_eligibility(OCC, replace(big, balance_sheet=Decimal("40000000.00"))) == "sme"


def test_golden_5_first_financial_statement_and_region():
    assert refused_rule(replace(SME, first_fy_months=11)) == "first_fy"
    assert refused_rule(replace(SME, region="Bretagne")) == "region"


@pytest.mark.parametrize("change, rule", [({"in_difficulty": True}, "in_difficulty"),
                                          ({"tax_social_up_to_date": False}, "tax_social"),
                                          ({"activity": "other"}, "activity")])
def test_each_criterion_refuses_with_its_rule(change, rule):
    assert refused_rule(replace(SME, **change)) == rule


def test_ess_associations_with_an_agreement_or_production_are_eligible():
    assert check_eligibility(OCC, replace(SME, activity="ess_ei_ea")) == "sme"
    assert check_eligibility(OCC, replace(SME, activity="ess_production_50")) == "sme"


def test_a_refusal_lists_the_other_failing_criteria_too():
    with pytest.raises(RuleViolation) as refused:
        check_eligibility(OCC, replace(SME, employees=6000, region="Bretagne"))
    assert refused.value.rule == "size" and "region" in refused.value.message


@pytest.mark.parametrize("siren, rule", [("732829321", "siren_checksum"), ("12345", "siren_format")])
def test_a_siren_failing_its_check_is_refused_naming_the_field(siren, rule):
    raw = SME.as_dict() | {"siren": siren}
    with pytest.raises(InvalidInput) as bad:
        CompanyFacts.parse(raw)
    assert (bad.value.field, bad.value.rule) == ("company.siren", rule)


def test_golden_8_regulation_1407_counts_the_current_and_two_previous_fiscal_years():
    room = headroom(regulations(), granted_on=date(2021, 4, 9),
                    prior=[PriorAid(date(2020, 6, 15), Decimal("190000.00")), PriorAid(date(2018, 12, 31), Decimal("50000.00"))])
    assert room.regulation == "1407/2013"
    assert room.remaining == Decimal("10000.00")  # the 2018 aid is outside 2019–2021


def test_regulation_2023_2831_counts_a_rolling_three_years_from_2024():
    prior = [PriorAid(date(2021, 6, 1), Decimal("100000.00")), PriorAid(date(2021, 5, 31), Decimal("100000.00"))]
    room = headroom(regulations(), granted_on=date(2024, 6, 1), prior=prior)
    assert room.regulation == "2023/2831" and room.ceiling == Decimal("300000.00")
    # 2021-06-01 is three years back to the day: outside the window that ends on 2024-06-01
    assert room.counted == Decimal("0")
    room = headroom(regulations(), granted_on=date(2024, 5, 31), prior=prior)
    assert room.counted == Decimal("100000.00")
