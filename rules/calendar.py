"""French legal calendar: Paris calendar days, public holidays, deadlines.

Pure domain rules (standard library only, no I/O): every function here runs
in microseconds and may be called in tight loops by the workflow engine.

Legal sources
-------------
* Code du travail, art. L3133-1: list of public holidays (jours fériés).
* Code de procédure civile, art. 641: a deadline in days does not count the
  day of the triggering event; a deadline in months expires on the day with
  the same number in the final month, or on its last day when there is none.
* Code de procédure civile, art. 642: a deadline expires at midnight of its
  last day; one that would end on a Saturday, Sunday, or public holiday is
  extended to the next working day.

Out of scope: the local holidays of Alsace-Moselle (Good Friday, 26 December,
Code du travail art. L3134-13) and of the overseas departments (abolition of
slavery). Dossiers are judged on the national calendar; add a regional
calendar here if a programme ever needs one.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = [
    "PARIS",
    "add_months",
    "deadline",
    "easter_sunday",
    "french_public_holidays",
    "is_working_day",
    "next_working_day",
    "paris_date",
    "start_of_paris_day",
]

#: Legal time of metropolitan France. Deadlines are counted in Paris calendar
#: days, whatever time zone the server or the applicant is in.
PARIS = ZoneInfo("Europe/Paris")

_SATURDAY = 5  # date.weekday(): Monday is 0, so 5 and 6 are the weekend.
_ONE_DAY = timedelta(days=1)


def _require_date(d: object, name: str = "d") -> date:
    # datetime is a subclass of date, but a datetime never compares equal to
    # a date, so it would silently never match a holiday. Refuse it outright
    # rather than return a wrong answer; callers convert with paris_date().
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(
            f"{name} must be a datetime.date (calendar day), got "
            f"{type(d).__name__}; convert instants with paris_date() first"
        )
    return d


def paris_date(instant: datetime) -> date:
    """Return the Europe/Paris calendar day on which ``instant`` falls.

    Deadlines run in calendar days of French legal time (CPC art. 641-642),
    so an instant stored in UTC must be converted before taking its date:
    2021-03-31T23:30Z is already 1 April in Paris.

    Raises ValueError for a naive datetime: the rule is that instants must
    carry a time zone, because a naive value cannot be placed on the Paris
    calendar without guessing.
    """
    if not isinstance(instant, datetime):
        raise TypeError(
            f"instant must be a datetime, got {type(instant).__name__}"
        )
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(
            "instants must carry a time zone (aware datetime required): "
            f"got naive datetime {instant.isoformat()}"
        )
    return instant.astimezone(PARIS).date()


def easter_sunday(year: int) -> date:
    """Return Easter Sunday of ``year`` in the Gregorian calendar.

    Anonymous Gregorian algorithm (Meeus/Jones/Butcher, "Astronomical
    Algorithms", ch. 8). Needed because three holidays of Code du travail
    art. L3133-1 (Easter Monday, Ascension, Whit Monday) move with Easter.
    """
    a = year % 19  # position in the 19-year Metonic cycle
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30  # epact: age of the paschal moon
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 (Meeus's letters) days to the following Sunday
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=256)
def french_public_holidays(year: int) -> frozenset[date]:
    """Return the national public holidays of ``year``.

    Code du travail, art. L3133-1: 1 January, Easter Monday, 1 May, 8 May,
    Ascension Thursday, Whit Monday, 14 July, 15 August (Assumption),
    1 November (All Saints), 11 November, 25 December.

    Usually eleven distinct days, but Ascension (Easter + 39, between 30
    April and 3 June) can fall on 1 or 8 May, leaving ten (e.g. 2008).

    Whit Monday stays a public holiday even where it is worked as the
    "journée de solidarité" (art. L3133-7): for deadlines it is a holiday.

    Cached per year: deadline computations ask for the same few years over
    and over, and a frozenset is immutable so sharing it is safe.
    """
    easter = easter_sunday(year)
    return frozenset(
        {
            date(year, 1, 1),  # Jour de l'an
            easter + timedelta(days=1),  # Lundi de Pâques
            date(year, 5, 1),  # Fête du travail
            date(year, 5, 8),  # Victoire 1945
            easter + timedelta(days=39),  # Ascension (Thursday)
            easter + timedelta(days=50),  # Lundi de Pentecôte
            date(year, 7, 14),  # Fête nationale
            date(year, 8, 15),  # Assomption
            date(year, 11, 1),  # Toussaint
            date(year, 11, 11),  # Armistice 1918
            date(year, 12, 25),  # Noël
        }
    )


def is_working_day(d: date) -> bool:
    """Tell whether ``d`` is a working day in the sense of CPC art. 642.

    A day is working unless it is a Saturday, a Sunday, or a public holiday
    of Code du travail art. L3133-1.
    """
    _require_date(d)
    return d.weekday() < _SATURDAY and d not in french_public_holidays(d.year)


def next_working_day(d: date) -> date:
    """Return ``d`` if it is a working day, else the next working day.

    CPC art. 642, al. 2: a deadline that would expire on a Saturday, Sunday,
    or public holiday is extended to the first working day that follows.
    """
    _require_date(d)
    # Terminates quickly: at most a weekend plus an adjacent holiday (e.g.
    # Saturday 25 Dec is followed by Sunday, then Monday 27 Dec).
    while not is_working_day(d):
        d += _ONE_DAY
    return d


def deadline(start: date, days: int, *, shift_to_working_day: bool = True) -> date:
    """Return the last day of a deadline of ``days`` calendar days.

    CPC art. 641, al. 1: the day of the triggering event (``start``) does
    not count, so the deadline ends on ``start + days``. CPC art. 642: if
    that day is not a working day it moves to the next working day, unless
    ``shift_to_working_day`` is False (for internal reminders, which may
    land on any day).

    Example: a request sent on 2021-03-01 with 7 days to answer expires on
    2021-03-08.
    """
    _require_date(start, "start")
    end = start + timedelta(days=days)
    return next_working_day(end) if shift_to_working_day else end


def _last_day_of_month(year: int, month: int) -> int:
    # Computed by hand instead of calendar.monthrange: this module is itself
    # named "calendar", and keeping it free of that import avoids any
    # shadowing surprise if the package folder ever lands on sys.path.
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - _ONE_DAY).day


def add_months(d: date, months: int) -> date:
    """Return ``d`` moved by ``months`` calendar months (may be negative).

    CPC art. 641, al. 2: a deadline in months expires on the day bearing the
    same number in the final month, or on that month's last day when there
    is no such day: 2022-08-31 + 6 months = 2023-02-28.
    """
    _require_date(d)
    year, month_index = divmod(d.year * 12 + (d.month - 1) + months, 12)
    month = month_index + 1
    return date(year, month, min(d.day, _last_day_of_month(year, month)))


def start_of_paris_day(d: date) -> datetime:
    """Return the aware instant at 00:00 Europe/Paris on calendar day ``d``.

    Used to turn a calendar-day bound into an instant for queries over
    stored timestamps (e.g. ``submitted_at < start_of_paris_day(d + 1 day)``
    means "submitted on or before d, Paris time", per CPC art. 642: a
    deadline runs until midnight of its last day).

    Midnight always exists exactly once in Paris: the summer-time changes
    happen at 02:00 and 03:00, so no fold or gap handling is needed.

    Beware: Python subtracts and compares two datetimes sharing the same
    tzinfo on wall-clock time, so the day of a time change looks 24 h long.
    Convert to UTC before measuring durations between Paris instants.
    """
    _require_date(d)
    return datetime.combine(d, time(0, 0), tzinfo=PARIS)
