"""SIREN and SIRET keys (SIRENE register, Code de commerce R123-220 et seq.)."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.identifiers import (
    InvalidIdentifier,
    luhn_valid,
    validate_siren,
    validate_siret,
)

# --- Luhn --------------------------------------------------------------------


def test_luhn_accepts_a_known_valid_number_and_refuses_a_typo():
    assert luhn_valid("732829320")
    assert not luhn_valid("732829321")
    assert luhn_valid("79927398713")  # the textbook example


def test_luhn_never_accepts_an_empty_or_non_digit_string():
    assert not luhn_valid("")
    assert not luhn_valid("7328 29320")
    assert not luhn_valid("73282932O")  # letter O instead of zero
    assert not luhn_valid("٧٣٢٨٢٩٣٢٠")  # Arabic-Indic digits pass isdigit()


@given(st.text(alphabet="0123456789", min_size=1, max_size=20), st.integers(0, 19))
def test_luhn_catches_every_single_digit_typo(digits, position):
    number = digits + str(next(c for c in range(10) if luhn_valid(digits + str(c))))
    position %= len(number)
    for replacement in "0123456789":
        if replacement != number[position]:
            typo = number[:position] + replacement + number[position + 1 :]
            assert not luhn_valid(typo)


# --- SIREN -------------------------------------------------------------------


def test_a_siren_with_a_correct_key_is_accepted():
    assert validate_siren("732829320") == "732829320"


def test_a_siren_typed_with_spaces_is_accepted_and_compacted():
    assert validate_siren(" 732 829 320 ") == "732829320"
    assert validate_siren("732\u00a0829\u202f320") == "732829320"  # French typography


def test_a_siren_with_a_wrong_key_is_refused_with_the_checksum_rule():
    with pytest.raises(InvalidIdentifier) as caught:
        validate_siren("732829321")
    error = caught.value
    assert error.field == "siren"
    assert error.rule == "siren_checksum"
    assert error.message == "Le SIREN 732829321 ne respecte pas la clé de Luhn"
    assert str(error) == error.message


@pytest.mark.parametrize("value", ["12345678", "1234567890", "73282932A", "", "   "])
def test_a_siren_that_is_not_nine_digits_is_refused_with_the_format_rule(value):
    with pytest.raises(InvalidIdentifier) as caught:
        validate_siren(value)
    assert caught.value.field == "siren"
    assert caught.value.rule == "siren_format"
    assert caught.value.message == "Le SIREN doit compter 9 chiffres"


def test_a_siren_given_as_a_number_is_refused_because_leading_zeros_would_be_lost():
    with pytest.raises(InvalidIdentifier) as caught:
        validate_siren(732829320)
    assert caught.value.rule == "siren_format"


def test_an_invalid_identifier_is_a_value_error():
    with pytest.raises(ValueError):
        validate_siren("12345678")


def test_an_invalid_identifier_survives_pickling_for_workflow_engines():
    error = InvalidIdentifier(field="siren", rule="siren_checksum", message="Le SIREN x")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, copy.rule, copy.message) == ("siren", "siren_checksum", "Le SIREN x")


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_any_eight_digit_prefix_has_exactly_one_check_digit_making_a_valid_siren(prefix):
    valid = []
    for check in "0123456789":
        try:
            valid.append(validate_siren(prefix + check))
        except InvalidIdentifier as error:
            assert error.rule == "siren_checksum"
    assert len(valid) == 1


# --- SIRET -------------------------------------------------------------------


def test_an_ordinary_siret_with_a_correct_key_is_accepted():
    assert validate_siret("73282932000074") == "73282932000074"
    assert validate_siret("732 829 320 00074") == "73282932000074"


def test_an_ordinary_siret_with_a_wrong_key_is_refused_with_the_checksum_rule():
    with pytest.raises(InvalidIdentifier) as caught:
        validate_siret("73282932000075")
    assert caught.value.field == "siret"
    assert caught.value.rule == "siret_checksum"
    assert caught.value.message == "Le SIRET 73282932000075 ne respecte pas la clé de Luhn"


def test_a_siret_whose_siren_part_has_a_wrong_key_is_refused():
    # 73282932100007 passes Luhn over 14 digits, but SIREN 732829321 does not.
    assert luhn_valid("73282932100007")
    with pytest.raises(InvalidIdentifier) as caught:
        validate_siret("73282932100007")
    assert caught.value.rule == "siret_checksum"
    assert "732829321" in caught.value.message


@pytest.mark.parametrize("value", ["7328293200007", "732829320000741", "7328293200007A", ""])
def test_a_siret_that_is_not_fourteen_digits_is_refused_with_the_format_rule(value):
    with pytest.raises(InvalidIdentifier) as caught:
        validate_siret(value)
    assert caught.value.field == "siret"
    assert caught.value.rule == "siret_format"
    assert caught.value.message == "Le SIRET doit compter 14 chiffres"


def test_the_la_poste_head_office_siret_is_accepted_under_the_luhn_key():
    # Its digit sum is 26, not a multiple of 5: the head office keeps Luhn.
    assert luhn_valid("35600000000048")
    assert sum(map(int, "35600000000048")) % 5 != 0
    assert validate_siret("356 000 000 00048") == "35600000000048"


def test_a_la_poste_establishment_is_accepted_when_its_digit_sum_is_a_multiple_of_5():
    siret = "35600000010023"
    assert sum(map(int, siret)) == 20
    assert not luhn_valid(siret)  # Luhn alone would wrongly refuse it
    assert validate_siret(siret) == siret


def test_a_la_poste_establishment_is_refused_when_its_digit_sum_is_not_a_multiple_of_5():
    siret = "35600000000014"
    assert luhn_valid(siret)  # Luhn alone would wrongly accept it
    with pytest.raises(InvalidIdentifier) as caught:
        validate_siret(siret)
    assert caught.value.rule == "siret_checksum"
    assert "La Poste" in caught.value.message


@given(st.text(alphabet="0123456789", min_size=5, max_size=5))
def test_la_poste_establishments_follow_the_digit_sum_rule(nic):
    siret = "356000000" + nic
    expected_valid = siret == "35600000000048" or sum(map(int, siret)) % 5 == 0
    try:
        validate_siret(siret)
        accepted = True
    except InvalidIdentifier as error:
        assert error.rule == "siret_checksum"
        accepted = False
    assert accepted == expected_valid
