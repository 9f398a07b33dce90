"""rules.calendar against an independent oracle: the `holidays` library's France calendar.

rules/calendar.py computes the public holidays of Code du travail art. L3133-1 itself (Easter
algorithm, eleven dates); `holidays` is kept, and updated when the law changes, by others. The two
must agree on every day of the years dossiers live in. An upgrade of `holidays` that disagrees
(a new holiday, a corrected date) fails here: read the law, then fix whichever is wrong.
"""

from __future__ import annotations

from datetime import date, timedelta

import holidays
import pytest

from rules.calendar import easter_sunday, french_public_holidays, is_working_day

YEARS = range(2019, 2036)
NATIONAL = holidays.France(years=YEARS)


def _every_day():
    day, last = date(YEARS.start, 1, 1), date(YEARS.stop - 1, 12, 31)
    while day <= last:
        yield day
        day += timedelta(days=1)


@pytest.mark.parametrize("year", YEARS)
def test_the_public_holidays_of_each_year_are_those_of_the_holidays_library(year):
    assert french_public_holidays(year) == {d for d in NATIONAL if d.year == year}


def test_every_day_from_2019_to_2035_is_working_exactly_when_the_oracle_says_so():
    disagreements = [
        d for d in _every_day() if is_working_day(d) != (d.weekday() < 5 and d not in NATIONAL)
    ]
    assert disagreements == []


@pytest.mark.parametrize("subdivision", ["57", "6AE"])  # Moselle; Bas-Rhin and Haut-Rhin
def test_alsace_moselle_adds_only_good_friday_and_26_december_which_dossiers_do_not_observe(subdivision):
    # The module docstring puts exactly these two local holidays (Code du travail art. L3134-13)
    # out of scope: dossiers are judged on the national calendar, so a weekday among them works.
    local = holidays.France(years=YEARS, subdiv=subdivision)
    extra = {d for d in local if d not in NATIONAL}
    expected = {easter_sunday(y) - timedelta(days=2) for y in YEARS} | {date(y, 12, 26) for y in YEARS}
    assert extra == expected
    assert all(is_working_day(d) for d in extra if d.weekday() < 5)
