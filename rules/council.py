"""The council calendar (pure): a session the head of service plans ahead sits on a working day,
its agenda closes before it, and a vote is recorded on or after the session's day — never
before, or the letter would announce a decision the council has not yet taken."""
from __future__ import annotations

from datetime import date

from rules import french
from rules.calendar import french_public_holidays, is_working_day
from rules.errors import RuleViolation

_WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def _fr(d: date) -> str:
    return f"{_WEEKDAYS[d.weekday()]} {french.day(d)}"


def check_session_plan(session_date: date, agenda_closes_on: date, today: date) -> None:
    """A planned session: ahead of today, on a working day (no weekend, no French public
    holiday: `rules.calendar`), its agenda closing before the session's day and not already
    past. Raises `session_in_past`, `session_not_working_day`, `agenda_after_session` or
    `agenda_closed`."""
    if session_date <= today:
        raise RuleViolation("session_in_past",
                            f"Date de la séance : le {french.day(session_date)} n'est pas à venir (nous sommes le "
                            f"{french.day(today)}) ; une séance se planifie à l'avance.", field="session_date")
    if not is_working_day(session_date):
        why = ("un jour férié" if session_date in french_public_holidays(session_date.year)
               else "un week-end")
        raise RuleViolation("session_not_working_day",
                            f"Date de la séance : le {_fr(session_date)} est {why} ; choisissez un jour ouvré.",
                            field="session_date")
    if agenda_closes_on >= session_date:
        raise RuleViolation("agenda_after_session",
                            f"Clôture de l'ordre du jour : le {french.day(agenda_closes_on)} doit précéder la séance du "
                            f"{french.day(session_date)}.", field="agenda_closes_on")
    if agenda_closes_on < today:
        raise RuleViolation("agenda_closed",
                            f"Clôture de l'ordre du jour : le {french.day(agenda_closes_on)} est déjà passé (nous sommes "
                            f"le {french.day(today)}).", field="agenda_closes_on")


def check_session_held(code: str, session_date: date, today: date) -> None:
    """A vote is recorded on the session's day or after it (`session_not_held`)."""
    if today < session_date:
        raise RuleViolation("session_not_held",
                            f"La séance {code} se tient le {french.day(session_date)} : son vote ne peut pas être "
                            f"enregistré avant (nous sommes le {french.day(today)}).", field="session")
