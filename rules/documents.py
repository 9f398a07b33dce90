"""The pieces of a dossier (pure): the review of a stage's pieces — before a dossier is declared
eligible, a programme may require every candidacy piece examined and accepted
(`Documents.reviewed_before_eligibility`) —, the deadlines of a request for pieces (its lapse,
its reminders) and who sees which piece."""
from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Iterable, Mapping

from rules.calendar import deadline
from rules.errors import RuleViolation

# -- the deadlines of a request for pieces ----------------------------------------------------------
# Remembered: the audit replay of a long history asks the same few days again and again.

@lru_cache(maxsize=4096)
def request_lapses_on(requested_on: date, *, lapse_after_days: int, shift_to_working_day: bool) -> date:
    """The day a request for pieces lapses (the dossier with it) when they are not all provided:
    the programme's days after the request (`Reminders.lapse_after_days`), moved to the next
    working day when the programme says so."""
    return deadline(requested_on, lapse_after_days, shift_to_working_day=shift_to_working_day)


@lru_cache(maxsize=4096)
def reminder_due_on(requested_on: date, after_days: int, *, shift_to_working_day: bool) -> date:
    """The day a reminder step (`after_days` after the request) of a request for pieces is due."""
    return deadline(requested_on, after_days, shift_to_working_day=shift_to_working_day)


def check_pieces_reviewed(latest: Mapping[str, str], kinds: Iterable[str], labels: Mapping[str, str]) -> None:
    """`latest`: each kind's latest version's review status (pending, accepted, refused).
    Raises `pieces_unreviewed` naming each piece still to examine or refused."""
    waiting = [k for k in kinds if latest.get(k) == "pending"]
    refused = [k for k in kinds if latest.get(k) == "refused"]
    if waiting or refused:
        said = []
        if waiting:
            said.append("à examiner : " + ", ".join(labels.get(k, k) for k in waiting))
        if refused:
            said.append("refusées : " + ", ".join(labels.get(k, k) for k in refused))
        raise RuleViolation("pieces_unreviewed",
                            "Les pièces de candidature doivent être examinées et acceptées avant la déclaration "
                            f"d'éligibilité ({' ; '.join(said)}).", field="documents", waiting=waiting, refused=refused)


# -- who sees which piece (data protection) -------------------------------------------------------
# Rule `consultant_need_to_know` (RGPD art. 5(1)(c), data minimisation; docs/portal.md): a
# referenced consultant sees only the pieces its mission needs — the company's identity (Kbis) and
# the pieces of the mission itself (quotes, diagnostic report, action plan, invoices, end-of-mission
# report). Never the bank details (RIB), the tax and social certificates, the financial statements,
# the de minimis attestation or a piece of unknown content (« autre »). A whitelist: a kind added
# later stays hidden from consultants until it is named here. The one place of this rule: the web
# dossier page, the web file download and the API (list, metadata, content) all ask it.
CONSULTANT_NEED_TO_KNOW = "consultant_need_to_know"
CONSULTANT_VISIBLE_KINDS = frozenset({
    "kbis", "consultant_quote", "diagnostic_report", "action_plan", "phase2_quote", "invoice",
    "end_of_mission_report",
})


def piece_visible(role: str, kind: str) -> bool:
    """May a person of this role (already in the dossier's scope) see a piece of this kind?"""
    return role != "consultant" or kind in CONSULTANT_VISIBLE_KINDS


def check_piece_visible(role: str, kind: str, label: str) -> None:
    """Raises `consultant_need_to_know` for a piece the role may not see."""
    if not piece_visible(role, kind):
        raise RuleViolation(CONSULTANT_NEED_TO_KNOW,
                            f"La pièce « {label} » n'est pas communiquée au prestataire : sa mission n'en a pas "
                            "besoin (protection des données personnelles).", field="kind")
