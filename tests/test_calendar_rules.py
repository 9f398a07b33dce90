"""French legal calendar: holidays (Code du travail L3133-1), deadlines (CPC 641-642)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.calendar import (
    PARIS,
    add_months,
    deadline,
    easter_sunday,
    french_public_holidays,
    is_working_day,
    next_working_day,
    paris_date,
    start_of_paris_day,
)

# Keep property tests on a span that dossiers can plausibly reference.
plausible_days = st.dates(min_value=date(1950, 1, 1), max_value=date(2150, 12, 31))


# --- Easter and public holidays ---------------------------------------------


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2021, date(2021, 4, 4)),
        (2022, date(2022, 4, 17)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
    ],
)
def test_easter_sunday_falls_on_the_known_date(year, easter):
    assert easter_sunday(year) == easter


@given(st.integers(min_value=1583, max_value=9999))
def test_easter_is_always_a_sunday_between_22_march_and_25_april(year):
    easter = easter_sunday(year)
    assert easter.weekday() == 6
    assert date(year, 3, 22) <= easter <= date(year, 4, 25)


def test_2021_has_exactly_the_eleven_holidays_of_article_l3133_1():
    assert french_public_holidays(2021) == {
        date(2021, 1, 1),
        date(2021, 4, 5),  # Easter Monday
        date(2021, 5, 1),
        date(2021, 5, 8),
        date(2021, 5, 13),  # Ascension
        date(2021, 5, 24),  # Whit Monday
        date(2021, 7, 14),
        date(2021, 8, 15),
        date(2021, 11, 1),
        date(2021, 11, 11),
        date(2021, 12, 25),
    }


def test_ascension_2021_is_thursday_13_may():
    assert date(2021, 5, 13) in french_public_holidays(2021)
    assert date(2021, 5, 13).weekday() == 3


def test_whit_monday_2021_is_24_may():
    assert date(2021, 5, 24) in french_public_holidays(2021)
    assert date(2021, 5, 24).weekday() == 0


@given(st.integers(min_value=1900, max_value=2200))
def test_every_year_has_eleven_holidays_unless_ascension_falls_on_1_or_8_may(year):
    holidays = french_public_holidays(year)
    ascension = easter_sunday(year) + timedelta(days=39)
    clash = ascension in (date(year, 5, 1), date(year, 5, 8))
    assert len(holidays) == (10 if clash else 11)
    assert all(d.year == year for d in holidays)


def test_ascension_2008_coincides_with_labour_day_leaving_ten_distinct_holidays():
    assert easter_sunday(2008) + timedelta(days=39) == date(2008, 5, 1)
    assert len(french_public_holidays(2008)) == 10


def test_public_holidays_are_cached_per_year():
    assert french_public_holidays(2030) is french_public_holidays(2030)


# --- Working days and CPC art. 642 ------------------------------------------


def test_weekends_and_holidays_are_not_working_days():
    assert not is_working_day(date(2021, 3, 6))  # Saturday
    assert not is_working_day(date(2021, 3, 7))  # Sunday
    assert not is_working_day(date(2021, 7, 14))  # Wednesday, national day
    assert is_working_day(date(2021, 3, 8))  # ordinary Monday


def test_a_deadline_ending_on_saturday_6_march_2021_moves_to_monday_8_march():
    assert next_working_day(date(2021, 3, 6)) == date(2021, 3, 8)
    assert deadline(date(2021, 3, 1), 5) == date(2021, 3, 8)


def test_a_deadline_ending_on_christmas_saturday_2021_moves_to_monday_27_december():
    assert next_working_day(date(2021, 12, 25)) == date(2021, 12, 27)


def test_a_deadline_ending_on_whit_monday_moves_to_tuesday():
    assert next_working_day(date(2021, 5, 24)) == date(2021, 5, 25)


def test_a_deadline_ending_on_a_working_day_does_not_move():
    assert next_working_day(date(2021, 3, 9)) == date(2021, 3, 9)
    assert deadline(date(2021, 3, 1), 8) == date(2021, 3, 9)


def test_a_deadline_can_be_left_on_a_non_working_day_when_asked():
    assert deadline(date(2021, 3, 1), 5, shift_to_working_day=False) == date(2021, 3, 6)


def test_a_datetime_is_refused_where_a_calendar_day_is_expected():
    # A datetime never equals a date, so it would silently miss holidays.
    with pytest.raises(TypeError, match="paris_date"):
        is_working_day(datetime(2021, 12, 25, 10, 0, tzinfo=PARIS))


@given(plausible_days)
def test_next_working_day_is_the_first_working_day_on_or_after_the_date(d):
    result = next_working_day(d)
    assert is_working_day(result)
    assert result >= d
    between = d
    while between < result:
        assert not is_working_day(between)
        between += timedelta(days=1)


# --- Document chase: reminders at J+7, J+14, J+21, J+30 ---------------------


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (7, date(2021, 3, 8)),
        (14, date(2021, 3, 15)),
        (21, date(2021, 3, 22)),
        (30, date(2021, 3, 31)),
    ],
)
def test_a_document_request_of_1_march_2021_is_chased_on_the_expected_days(days, expected):
    assert deadline(date(2021, 3, 1), days) == expected


# --- Paris calendar day of an instant ---------------------------------------


def test_2330_utc_on_31_march_2021_is_already_1_april_in_paris_summer_time():
    instant = datetime(2021, 3, 31, 23, 30, tzinfo=timezone.utc)
    assert paris_date(instant) == date(2021, 4, 1)


def test_2330_utc_on_31_january_2021_is_already_1_february_in_paris_winter_time():
    instant = datetime.fromisoformat("2021-01-31T23:30:00+00:00")
    assert paris_date(instant) == date(2021, 2, 1)


def test_an_instant_already_in_paris_time_keeps_its_day():
    assert paris_date(datetime(2021, 3, 31, 23, 30, tzinfo=PARIS)) == date(2021, 3, 31)


def test_a_naive_datetime_is_refused_because_instants_must_carry_a_time_zone():
    with pytest.raises(ValueError, match="must carry a time zone"):
        paris_date(datetime(2021, 3, 31, 23, 30))


def test_start_of_a_paris_day_is_midnight_paris_time():
    assert start_of_paris_day(date(2021, 4, 1)) == datetime(
        2021, 3, 31, 22, 0, tzinfo=timezone.utc
    )
    assert start_of_paris_day(date(2021, 2, 1)) == datetime(
        2021, 1, 31, 23, 0, tzinfo=timezone.utc
    )


def test_start_of_the_day_summer_time_begins_is_still_in_winter_time():
    # 28 March 2021: clocks go forward at 02:00, after midnight.
    start = start_of_paris_day(date(2021, 3, 28))
    assert start.utcoffset() == timedelta(hours=1)
    # Subtracting two Europe/Paris datetimes is wall-clock arithmetic in
    # Python; the real duration shows only once both are in UTC.
    next_start = start_of_paris_day(date(2021, 3, 29))
    assert next_start.astimezone(timezone.utc) - start.astimezone(timezone.utc) == timedelta(
        hours=23
    )


@given(plausible_days)
def test_the_start_of_a_paris_day_falls_on_that_paris_day(d):
    start = start_of_paris_day(d)
    assert paris_date(start) == d
    assert paris_date(start - timedelta(microseconds=1)) == d - timedelta(days=1)


# --- Deadlines in months (CPC art. 641, al. 2) ------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2022, 8, 31), 6, date(2023, 2, 28)),
        (date(2022, 12, 31), 6, date(2023, 6, 30)),
        (date(2023, 8, 31), 6, date(2024, 2, 29)),  # leap year
        (date(2022, 1, 15), 1, date(2022, 2, 15)),
        (date(2022, 1, 31), 12, date(2023, 1, 31)),
        (date(2022, 3, 31), -1, date(2022, 2, 28)),
        (date(2022, 1, 10), -1, date(2021, 12, 10)),
    ],
)
def test_adding_months_keeps_the_day_number_or_clamps_to_the_month_end(start, months, expected):
    assert add_months(start, months) == expected


@given(plausible_days, st.integers(min_value=-600, max_value=600))
def test_adding_months_lands_in_the_right_month_never_past_the_day_number(d, months):
    result = add_months(d, months)
    assert (result.year * 12 + result.month) - (d.year * 12 + d.month) == months
    assert result.day <= d.day
    if result.day < d.day:
        assert (result + timedelta(days=1)).day == 1  # clamped to month end
