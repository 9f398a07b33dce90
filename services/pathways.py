"""A company's pathway in one programme (SPEC §11.4): Nouvelle-Aquitaine's aid dossiers opened
from the approved progress plan of its diagnostic dossier, and the company's page (every
dossier, its state, aid, loan outstanding, de minimis used and left)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from db import models as m
from programmes import regulations
from rules.calendar import paris_date
from rules.de_minimis import PriorAid, headroom
from rules.errors import InvalidInput, RuleViolation
from rules.instruments import check_request_days, parse_request
from rules.money import ZERO
from services.clock import Clock
from services.commands import Actor, Outcome, check_scope, compute_from_inputs, insert_dossier, rule_inputs
from services.commands.base import _COMPANY_BY_SIREN, _commit, _move
from services.commands.instruction import _prior_de_minimis
from services.events import append_event
from services.outbox import applicant_recipient, dossier_context, enqueue
from services.uow import UnitOfWork

# An action is covered by an aid dossier that is open or was voted (SPEC §11.4); a dossier
# rejected, withdrawn or lapsed frees its actions.
FREEING_STATES = ("rejected", "withdrawn", "lapsed")
PLAN_APPROVED_STATES = ("approved", "in_payment", "closed")


def _action_numbers(raw) -> list[int]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("actions", "actions : la liste des numéros d'action du plan que le dossier met en œuvre.")
    out = []
    for i, n in enumerate(raw):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidInput(f"actions[{i}]", f"actions[{i}] : un numéro d'action entier ≥ 1 est attendu.")
        if n in out:
            raise InvalidInput(f"actions[{i}]", f"actions[{i}] : l'action n°{n} figure deux fois.")
        out.append(n)
    return out


def open_aid_dossier(*, uow: UnitOfWork, clock: Clock, actor: Actor, plan_id: int, actions, consulting=None,
                     investment=None) -> Outcome:
    """The company opens an aid dossier from its approved progress plan, naming the plan's
    actions it carries out, with consulting days or investment expenses. Refused before the
    plan's favourable vote (`plan_not_approved`), for an action the plan does not have
    (`action_not_in_plan`) or one already covered by an open or voted aid dossier
    (`action_covered`). The dossier starts in instruction."""
    now = clock.now()
    today = paris_date(now)
    session = uow.session
    if isinstance(plan_id, bool) or not isinstance(plan_id, int):
        raise InvalidInput("plan", "plan : le dossier de diagnostic dont le plan de progrès est mis en œuvre.")
    plan = session.get(m.Dossier, plan_id)
    if plan is None:
        raise InvalidInput("plan", "plan : dossier de diagnostic inconnu.")
    check_scope(actor, plan, uow.catalogue)
    programme = uow.catalogue.get(plan.programme_id, plan.programme_version)
    plan_line = programme.line(plan.line)
    aid_line = next((line for line in programme.dossier_lines if line.shape == "aid" and line.opened_from == plan_line.number),
                    None)
    if aid_line is None:
        raise InvalidInput("plan", f"plan : le programme {programme.name} n'ouvre pas de dossier d'aide depuis ce dossier.")
    numbers = _action_numbers(actions)
    if investment is not None and not isinstance(investment, dict):
        raise InvalidInput("investment", "investment : attendu {expenses: [{label, amount}]}.")
    request = parse_request(programme, aid_line.phases[0], days=consulting,
                            expenses=(investment or {}).get("expenses") if investment is not None else None,
                            days_field="consulting", expenses_field="investment.expenses")

    def plan_approved() -> None:
        if plan.status not in PLAN_APPROVED_STATES or plan.voted is None:
            raise RuleViolation("plan_not_approved",
                                f"Le plan de progrès du dossier {plan.reference} n'est pas encore approuvé par un vote "
                                f"favorable : un dossier d'aide s'ouvre après ce vote.", field="plan")

    def actions_available() -> None:
        in_plan = {a["number"] for a in plan.actions or []}
        missing = [n for n in numbers if n not in in_plan]
        if missing:
            raise RuleViolation("action_not_in_plan",
                                f"Action(s) {', '.join(f'n°{n}' for n in missing)} absente(s) du plan de progrès du "
                                f"dossier {plan.reference} (actions : {', '.join(f'n°{n}' for n in sorted(in_plan))}).",
                                field="actions")
        covering = session.scalars(select(m.Dossier).where(m.Dossier.plan_id == plan.id,
                                                           m.Dossier.status.not_in(FREEING_STATES))).all()
        for other in covering:
            taken = sorted(set(other.actions or []) & set(numbers))
            if taken:
                raise RuleViolation("action_covered",
                                    f"Action(s) {', '.join(f'n°{n}' for n in taken)} déjà couverte(s) par le dossier "
                                    f"{other.reference}.", field="actions")

    dossier = m.Dossier(
        reference="", programme_id=programme.id, programme_version=programme.version, status="draft",
        company_facts=dict(plan.company_facts), quotes={"line_request": request.to_record()}, paid_total=ZERO,
        recovered_total=ZERO, submitted_at=now, updated_at=now, line=aid_line.number, plan_id=plan.id,
        actions=numbers, size_class=plan.size_class, company_id=plan.company_id,
    )
    _move(dossier, "open_aid_dossier", actor,
          {"plan_approved": plan_approved, "actions_available": actions_available,
           "line_amounts": lambda: check_request_days(programme, request, "consulting")}, aid_line.shape)
    insert_dossier(session, dossier, programme, now)
    estimate = compute_from_inputs(programme, rule_inputs(dossier, [], today), de_minimis=False)
    dossier.proposal = estimate.to_record() | {"estimate": True}
    append_event(session, dossier=dossier, at=now, actor=actor.name, role=actor.role, command="open_aid_dossier",
                 state_before="draft",
                 data={"programme": programme.key, "programme_hash": programme.content_hash,
                       "company": dossier.company_facts, "line": aid_line.number, "plan": plan.reference,
                       "plan_id": plan.id, "actions": numbers, "request": request.to_record(),
                       "size_class": plan.size_class,
                       "estimate": estimate.to_record()})
    enqueue(session, kind="candidacy_received", dedupe_key=f"{dossier.reference}:candidacy_received", now=now,
            recipient=applicant_recipient(dossier),
            context={"dossier": dossier_context(dossier, programme), "submitted_at": now.isoformat()}, dossier=dossier)
    _commit(uow, dossier.id)
    return Outcome(dossier.id, dossier.reference, dossier.status, dossier.version,
                   [a.as_dict() for a in estimate.adjustments], {"aid": estimate.as_dict()})


def loan_totals(rows: list[dict]) -> dict[str, str]:
    """What a pathway's dossiers still owe on their loans, and what was written off: a loan
    written off is no longer owed to the programme's books, so it is totalled apart."""
    loans = [r["loan"] for r in rows if r["loan"]]
    return {"loans_outstanding": str(sum((Decimal(x["outstanding"]) for x in loans if "written_off" not in x), ZERO)),
            "loans_written_off": str(sum((Decimal(x["written_off"]) for x in loans if "written_off" in x), ZERO))}


def company_pathway(uow: UnitOfWork, siren: str, *, on: date) -> dict:
    """A company's page: every dossier of every programme, its state, aid, paid, loan
    outstanding, and its de minimis used and left at `on` (the single undertaking)."""
    from services.loans import loan_figures
    from services.queries import aid_of
    from states.lifecycle import STATE_LABELS

    session = uow.session
    company = session.scalar(_COMPANY_BY_SIREN, {"siren": siren})
    if company is None:
        raise InvalidInput("siren", f"siren : aucune entreprise {siren} connue.")
    dossiers = session.scalars(select(m.Dossier).where(m.Dossier.company_id == company.id)
                               .order_by(m.Dossier.submitted_at, m.Dossier.id)).all()
    rows = []
    by_id = {d.id: d for d in dossiers}
    for d in dossiers:
        programme = uow.catalogue.get(d.programme_id, d.programme_version)
        loan = loan_figures(session, d)
        rows.append({
            "id": d.id, "reference": d.reference, "programme": programme.name, "programme_id": programme.id,
            "example": programme.is_example, "line": programme.line(d.line).name, "call": d.call_code,
            "state": d.status, "state_label": STATE_LABELS[d.status], "aid": aid_of(d),
            "paid": str(d.paid_total - d.recovered_total), "loan": loan,
            "plan": by_id[d.plan_id].reference if d.plan_id in by_id else None,
            "cites": by_id[d.cites_id].reference if d.cites_id in by_id else None,
            "actions": d.actions if d.plan_id else None,
            "plan_actions": d.actions if d.plan_id is None and d.actions else None,
        })
    # The latest dossier's attestation plus every aid the service granted the undertaking.
    aids = _prior_de_minimis(session, dossiers[-1]) if dossiers else []
    if dossiers:
        latest = dossiers[-1].id
        aids += [PriorAid(a.granted_on, a.amount, a.source) for a in session.scalars(
            select(m.DeMinimisAid).where(m.DeMinimisAid.dossier_id == latest, m.DeMinimisAid.source == "usine"))]
    room = headroom(regulations(), granted_on=on, prior=aids)
    return {"siren": siren, "name": company.name, "dossiers": rows, **loan_totals(rows),
            "de_minimis": {"regulation": room.regulation, "ceiling": str(room.ceiling), "used": str(room.counted),
                           "remaining": str(room.remaining)}}
