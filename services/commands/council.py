"""The council: propose a dossier for a session's vote and record the vote (approved,
rejected, adjourned) — the session lookup and the amounts frozen at the grant date."""
from __future__ import annotations

from datetime import date

from db import models as m
from rules import french
from rules.council import check_session_held
from rules.errors import InvalidInput, NotAllowed, RuleViolation
from rules.money import AidBreakdown
from rules.settlement import de_minimis_granted, payment_deadline
from rules.text import check_text
from services import deadlines
from services.clock import Clock
from services.commands.base import _COUNCIL_SESSION_BY_CODE, Actor, Outcome, _Command, _commit
from services.commands.documents import _documents_complete
from services.commands.instruction import _prior_de_minimis, compute_from_inputs, rule_inputs
from services.commands.payments import expense_window
from services.uow import UnitOfWork


def _session_for(cmd: _Command, code, *, create: bool, held_today: bool = False) -> m.CouncilSession | None:
    """The session of that code. An unknown code is created when `create`: by a first proposal,
    dated the programme's lead time ahead; by the vote of an adjourned dossier (`held_today`),
    held that very day — the vote being recorded is its sitting."""
    if not isinstance(code, str) or not code.strip() or len(code) > 64:
        raise InvalidInput("session", "session : identifiant de séance attendu (64 caractères au plus).")
    code = check_text(code, "session").strip()
    session_row = cmd.session.scalar(_COUNCIL_SESSION_BY_CODE, {"code": code})
    if session_row is None and create:
        c = cmd.programme.council
        session_date = cmd.today if held_today else date.fromordinal(cmd.today.toordinal() + c.session_after_days)
        session_row = m.CouncilSession(
            code=code, programme_id=cmd.programme.id, session_date=session_date,
            agenda_closes_on=date.fromordinal(session_date.toordinal() - c.agenda_closes_days_before),
            created_at=cmd.now)
        cmd.session.add(session_row)
        cmd.session.flush()
        deadlines.mark_programme(cmd.session, cmd.programme.id, cmd.today)
    return session_row


def _vote_documents(cmd: _Command) -> tuple[str, ...]:
    return cmd.line.vote_documents if cmd.line.vote_documents is not None else cmd.programme.documents.vote


def propose_for_vote(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, session: str,
                     expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    council = _session_for(cmd, session, create=True)
    prior = _prior_de_minimis(cmd.session, cmd.dossier)
    found: dict = {}

    def action_plan_submitted() -> None:
        if cmd.line.plan == "actions":
            if not cmd.dossier.actions:
                raise RuleViolation("documents_missing", "Le plan de progrès (ses actions numérotées) n'a pas été déposé.",
                                    field="actions")
        elif "2" not in cmd.dossier.quotes:
            raise RuleViolation("documents_missing", "Le plan d'action (jours et taux de la phase 2) n'a pas été déposé.",
                                field="phase2")

    def agenda_open() -> None:
        if cmd.today > council.agenda_closes_on:
            raise RuleViolation("agenda_closed", f"L'ordre du jour de la séance {council.code} est clos depuis le "
                                f"{french.day(council.agenda_closes_on)}.", field="session")

    def amounts_within_caps() -> None:
        found["inputs"] = rule_inputs(cmd.dossier, prior, council.session_date)
        found["breakdown"] = compute_from_inputs(cmd.programme, found["inputs"])

    cmd.move("propose_for_vote", {
        "action_plan_submitted": action_plan_submitted,
        "vote_documents_complete": _documents_complete(cmd.session, cmd.dossier, _vote_documents(cmd), "le vote"),
        "agenda_open": agenda_open,
        "amounts_within_caps": amounts_within_caps,
    })
    breakdown: AidBreakdown = found["breakdown"]
    cmd.dossier.session_id = council.id
    cmd.dossier.proposal = breakdown.to_record() | {"session": council.code}
    cmd.record("propose_for_vote", {"session": council.code, "session_date": council.session_date.isoformat(),
                                    "rule_inputs": found["inputs"], "proposal": breakdown.to_record()})
    _commit(uow, dossier_id)
    return cmd.outcome(breakdown.adjustments, aid=breakdown.as_dict())


def record_vote(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, session: str, outcome: str,
                deliberation: str | None = None, expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    if outcome not in ("approved", "rejected", "adjourned"):
        raise InvalidInput("outcome", "outcome : « approved », « rejected » ou « adjourned ».")
    if outcome != "adjourned":
        if not isinstance(deliberation, str) or not deliberation.strip() or len(deliberation) > 64:
            raise InvalidInput("deliberation", "deliberation : le numéro de délibération est obligatoire.")
        deliberation = check_text(deliberation, "deliberation").strip()
    adjourned = bool((cmd.dossier.proposal or {}).get("adjourned"))
    council = _session_for(cmd, session, create=adjourned, held_today=True)
    prior = _prior_de_minimis(cmd.session, cmd.dossier)
    found: dict = {}

    def on_session_agenda() -> None:
        if council is None or (cmd.dossier.session_id != council.id and not adjourned):
            raise NotAllowed(f"Le dossier n'est pas inscrit à l'ordre du jour de la séance « {session} ».",
                             field="session")
        if adjourned:
            # An adjourned dossier waits for the next session (SPEC §3): not the one that
            # adjourned it, nor any session held on or before it.
            adjourning = cmd.session.get(m.CouncilSession, cmd.dossier.session_id)
            if adjourning is not None and (council.id == adjourning.id
                                           or council.session_date <= adjourning.session_date):
                raise NotAllowed(
                    f"Le dossier a été ajourné par la séance « {adjourning.code} » du "
                    f"{french.day(adjourning.session_date)} : il est voté à une séance suivante.", field="session")

    def session_held() -> None:
        check_session_held(council.code, council.session_date, cmd.today)

    def amounts_within_caps() -> None:
        # The de minimis ceiling is judged at the grant date: the vote.
        found["inputs"] = rule_inputs(cmd.dossier, prior, cmd.today)
        found["breakdown"] = compute_from_inputs(cmd.programme, found["inputs"])

    cmd.move(f"vote_{outcome}", {"on_session_agenda": on_session_agenda, "session_held": session_held,
                                 "amounts_within_caps": amounts_within_caps})
    cmd.dossier.session_id = council.id
    data = {"session": council.code, "outcome": outcome, "deliberation": deliberation}
    aid = None
    adjustments = ()
    if outcome == "approved":
        breakdown: AidBreakdown = found["breakdown"]
        adjustments = breakdown.adjustments
        cmd.dossier.voted = breakdown.to_record()
        # What is paid out as grants; a loan is disbursed and repaid apart (SPEC §11.3).
        cmd.dossier.aid_total = breakdown.subsidy_total
        cmd.dossier.deliberation = deliberation
        cmd.dossier.voted_on = cmd.today
        due = payment_deadline(expense_window(cmd.programme, cmd.dossier).ends_on,
                               cmd.programme.money.payment_deadline_months,
                               shift_to_working_day=cmd.programme.reminders.shift_to_working_day)
        if due is not None:
            cmd.dossier.payment_deadline_on = due
        for amount in de_minimis_granted(cmd.dossier.voted):
            cmd.session.add(m.DeMinimisAid(siren=cmd.dossier.company_facts["siren"], dossier_id=cmd.dossier.id,
                                           source="usine", granted_on=cmd.today, amount=amount,
                                           regulation=breakdown.de_minimis_regulation))
        aid = breakdown.as_dict()
        data |= {"rule_inputs": found["inputs"], "voted": breakdown.to_record(),
                 "payment_deadline_on": cmd.dossier.payment_deadline_on.isoformat() if cmd.dossier.payment_deadline_on else None}
    elif outcome == "rejected":
        cmd.dossier.deliberation = deliberation
        cmd.dossier.closed_at = cmd.now
    else:
        cmd.dossier.proposal = {**(cmd.dossier.proposal or {}), "adjourned": True}
    cmd.record("record_vote", data)
    subsidies = found["breakdown"].subsidy_total if outcome == "approved" else None
    loans = [line.loan for line in found["breakdown"].lines if line.loan] if outcome == "approved" else []
    cmd.notify("vote_result", f"vote:{council.code}:{outcome}", outcome=outcome, session=council.code,
               session_date=council.session_date.isoformat(), deliberation=deliberation, aid=aid,
               convention_required=bool(subsidies is not None and subsidies > cmd.programme.money.convention_threshold),
               loans=loans)
    _commit(uow, dossier_id)
    return cmd.outcome(adjustments, aid=aid)
