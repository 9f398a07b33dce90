"""One French way of writing amounts, rates and dates (rules.french, Babel fr_FR), whatever the
channel: a web page, a letter, the CLI, an export."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from jinja2 import Environment

from rules import french

NBSP = "\u00a0"


def _channels():
    """Each channel's own entry point for an amount, as its code calls it."""
    from cli import loans as cli_loans
    from notifications.rendering import FILTERS
    from rules import loans as rules_loans
    from services import wording
    from web import format as web_format

    env = Environment()
    web_format.install(env)
    return {
        "web page": lambda v: env.from_string("{{ amount | eur }}").render(amount=v),
        "letter": FILTERS["euros"],
        "CLI": cli_loans.euros,
        "loan schedule PDF": french.euros,
        "auditor's PDF and history": wording.shown_euros,
        "domain message": rules_loans._euros,
    }


@pytest.mark.parametrize(("amount", "expected"), [
    (Decimal("0.125"), f"0,13{NBSP}€"),
    (Decimal("-0.125"), f"-0,13{NBSP}€"),
    (Decimal("2.675"), f"2,68{NBSP}€"),
    (Decimal("17500"), f"17{NBSP}500,00{NBSP}€"),
    (Decimal("1234567.005"), f"1{NBSP}234{NBSP}567,01{NBSP}€"),
])
def test_an_amount_reads_the_same_on_a_web_page_in_a_letter_in_the_cli_and_in_the_exports(amount, expected):
    written = {channel: show(amount) for channel, show in _channels().items()}
    assert written == dict.fromkeys(written, expected)


def test_half_a_cent_is_rounded_up_away_from_zero_never_to_the_even_cent():
    assert french.euros(Decimal("0.125")) == f"0,13{NBSP}€"  # half-even would give 0,12
    assert french.euros(Decimal("0.135")) == f"0,14{NBSP}€"
    assert french.euros("-0.125") == f"-0,13{NBSP}€"
    assert french.round_cents(Decimal("0.125")) == Decimal("0.13")


def test_an_amount_that_rounds_to_zero_is_never_written_with_a_minus_sign():
    assert french.euros(Decimal("-0.004")) == f"0,00{NBSP}€"


def test_thousands_are_separated_by_a_no_break_space_never_the_narrow_one():
    for text in (french.euros(Decimal("1234567.8")), french.number(1234567), french.percent("123.45")):
        assert "\u202f" not in text and " " not in text
    assert french.number(1234567) == f"1{NBSP}234{NBSP}567"


def test_a_float_amount_is_refused_because_it_has_already_lost_the_cent():
    with pytest.raises(TypeError):
        french.euros(0.1)


def test_a_spreadsheet_cell_has_a_decimal_comma_and_no_grouping():
    assert french.number(Decimal("1234.5"), 2, grouping=False) == "1234,50"


@pytest.mark.parametrize(("rate", "decimals", "expected"), [
    ("0.0203", None, f"2,03{NBSP}%"),
    ("0.7", None, f"70{NBSP}%"),
    ("0.0055", None, f"0,55{NBSP}%"),
    ("0.7", 0, f"70{NBSP}%"),
    ("0.0203", 2, f"2,03{NBSP}%"),
    ("0.00125", 1, f"0,1{NBSP}%"),
    ("0.00125", 2, f"0,13{NBSP}%"),
])
def test_a_rate_is_written_in_points_with_a_decimal_comma(rate, decimals, expected):
    assert french.percent(rate, decimals) == expected


def test_days_and_instants_are_written_on_the_paris_calendar():
    late_evening_utc = datetime(2021, 3, 31, 23, 30, 5, tzinfo=timezone.utc)
    assert french.day(date(2021, 3, 25)) == "25/03/2021"
    assert french.day(late_evening_utc) == "01/04/2021"
    assert french.instant(late_evening_utc) == "01/04/2021 01:30"
    assert french.instant(late_evening_utc, seconds=None) == "01/04/2021 01:30:05"
    assert french.long_date(date(2021, 3, 1)) == "1er mars 2021"
    assert french.long_date(date(2021, 4, 9)) == "9 avril 2021"
    assert french.long_instant(late_evening_utc) == f"1er avril 2021 à 1{NBSP}h{NBSP}30"


def test_an_instant_without_a_time_zone_is_refused_rather_than_guessed():
    with pytest.raises(ValueError):
        french.instant(datetime(2021, 3, 31, 23, 30))


def test_a_page_shows_a_dash_for_no_amount_and_a_malformed_stored_amount_as_it_was_written():
    assert french.shown_euros(None) == french.shown_euros("") == "—"
    assert french.shown_euros("douze") == "douze"
    assert french.shown_euros(Decimal("17500")) == f"17{NBSP}500,00{NBSP}€"


@pytest.mark.parametrize(("name", "written"), [
    ("Atelier Garonne", "d'Atelier Garonne"),
    ("Éclair Usinage", "d'Éclair Usinage"),
    ("Léa Moreau", "de Léa Moreau"),
    ("Hoche Industrie", "de Hoche Industrie"),
])
def test_a_letter_elides_de_before_a_name_that_begins_with_a_vowel(name, written):
    from notifications.rendering import FILTERS

    assert FILTERS["de"](name) == written
