"""The instruction of a dossier by its officer: take it for review, declare it eligible or
ineligible, accept the diagnostic, file the plan — and the aid computation from recorded rule
inputs, which the estimate, the proposal, the vote and audit replays all use."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from db import models as m
from programmes import Programme, regulations
from rules.de_minimis import PriorAid, headroom
from rules.eligibility import CompanyFacts, check_eligibility
from rules.errors import InvalidInput, RuleViolation
from rules.instruments import LineRequest, check_request_days, compute_line_aid, parse_request
from rules.money import AidBreakdown, Quote, check_phase_days, compute_aid, parse_amount
from rules.text import check_text
from services.clock import Clock
from services.commands.base import _DE_MINIMIS_OF_UNDERTAKING, Actor, Outcome, _Command, _commit, _reason
from services.commands.documents import _documents_complete, _documents_reviewed
from services.uow import UnitOfWork


def take_for_review(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int,
                    expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    cmd.move("take_for_review")
    cmd.dossier.officer = actor.name
    cmd.record("take_for_review", {"officer": actor.name})
    _commit(uow, dossier_id)
    return cmd.outcome()



def _consultant_name(consultant, *, required: bool) -> str | None:
    if consultant is None and not required:
        return None
    if not isinstance(consultant, str) or not consultant.strip() or len(consultant) > 200:
        raise InvalidInput("consultant", "consultant : le nom du prestataire référencé est obligatoire.")
    return check_text(consultant, "consultant").strip()


def declare_eligible(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, consultant: str | None = None,
                     phase1: dict | None = None, expenses: list | None = None, instruments: dict | None = None,
                     expected_version: int | None = None) -> Outcome:
    """The officer declares the dossier eligible. On a line with a diagnostic stage: the chosen
    consultant and the phase-1 quote (`phase1` days and day rate); on a line with instruments:
    its consulting days (`phase1`) or investment `expenses`, and the split asked between its
    `instruments` ({"subsidy", "loan"}, each cut to its caps). The amounts are estimated at once
    (the proposal freezes them later)."""
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    by_instrument = any(cmd.programme.phase(n).instruments for n in cmd.line.phases)
    if by_instrument:
        request = parse_request(cmd.programme, cmd.line.phases[0], days=phase1, expenses=expenses, instruments=instruments)
        consultant = _consultant_name(consultant, required=False)
        quote = request.quote
    else:
        consultant = _consultant_name(consultant, required=True)
        quote = Quote.parse(phase1, "phase1")
        request = None
    facts = CompanyFacts.parse(cmd.dossier.company_facts)
    found: dict = {}

    def company_eligible() -> None:
        found["size_class"] = check_eligibility(cmd.programme, facts)

    def line_amounts() -> None:
        if request is not None:
            check_request_days(cmd.programme, request, "phase1")
        else:
            check_phase_days(cmd.programme, cmd.line.phases[0], quote.days)

    cmd.move("declare_eligible", {
        "candidacy_documents_complete": _documents_complete(cmd.session, cmd.dossier, cmd.programme.documents.candidacy, "la candidature"),
        "candidacy_documents_reviewed": _documents_reviewed(cmd.session, cmd.dossier, cmd.programme),
        "company_eligible": company_eligible,
        "line_amounts": line_amounts,
    })
    cmd.dossier.size_class = found["size_class"]
    cmd.dossier.consultant = consultant
    cmd.dossier.quotes = {"line_request": request.to_record()} if request is not None else {"1": quote.as_dict()}
    estimate = _estimate(cmd)
    data = {"consultant": cmd.dossier.consultant, "size_class": found["size_class"], "company": facts.as_dict()}
    data |= {"request": request.to_record()} if request is not None else {"phase1": quote.as_dict()}
    data["estimate"] = estimate.to_record() if estimate else None
    cmd.record("declare_eligible", data)
    phase1 = None
    if quote is not None:
        line1 = estimate.lines[0] if estimate else None
        phase1 = {"days": quote.days, "day_rate": str(quote.day_rate),
                  "eligible_expense": str(line1.eligible_expense) if line1 else None}
    cmd.notify("eligibility_decision", "eligibility", decision="eligible", reason=None,
               consultant=cmd.dossier.consultant, phase1=phase1,
               aid=estimate.as_dict() if estimate and request is not None else None)
    _commit(uow, dossier_id)
    return cmd.outcome(estimate.adjustments if estimate else (), aid=estimate.as_dict() if estimate else None)


def _estimate(cmd: _Command) -> AidBreakdown | None:
    """The amounts as they would be, without the de minimis ceiling (judged at the proposal and
    the vote): shown to the officer and the company until the proposal freezes them. None when
    a figure the programme does not give is needed."""
    try:
        breakdown = compute_from_inputs(cmd.programme, rule_inputs(cmd.dossier, [], cmd.today), de_minimis=False)
    except RuleViolation:
        return None
    cmd.dossier.proposal = breakdown.to_record() | {"estimate": True}
    return breakdown


def declare_ineligible(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, reason: str,
                       expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    reason = _reason(reason)
    cmd.move("declare_ineligible")
    cmd.dossier.closed_at = cmd.now
    cmd.record("declare_ineligible", {}, reason)
    cmd.notify("eligibility_decision", "eligibility", decision="ineligible", reason=reason,
               consultant=None, phase1=None)
    _commit(uow, dossier_id)
    return cmd.outcome()


def accept_diagnostic(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int,
                      expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    cmd.move("accept_diagnostic", {
        "diagnostic_documents_complete": _documents_complete(cmd.session, cmd.dossier, cmd.programme.documents.diagnostic, "le diagnostic"),
    })
    cmd.record("accept_diagnostic", {})
    _commit(uow, dossier_id)
    return cmd.outcome()


ACTION_THEMES = ("economic", "social", "environmental")


def parse_actions(raw, field: str = "actions") -> list[dict]:
    """A progress plan: numbered actions, each with a theme and an estimated budget (SPEC §11.4)."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(field, f"{field} : au moins une action {{number, theme, budget}} est attendue.")
    if len(raw) > 100:
        raise InvalidInput(field, f"{field} : 100 actions au plus.")
    out, seen = [], set()
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput(where, f"{where} : {{number, theme, budget}} attendu.")
        number = item.get("number")
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise InvalidInput(f"{where}.number", f"{where}.number : un numéro d'action entier ≥ 1 est attendu.")
        if number in seen:
            raise InvalidInput(f"{where}.number", f"{where}.number : l'action n°{number} figure deux fois.")
        seen.add(number)
        if item.get("theme") not in ACTION_THEMES:
            raise InvalidInput(f"{where}.theme", f"{where}.theme : « economic », « social » ou « environmental ».")
        out.append({"number": number, "theme": item["theme"],
                    "budget": str(parse_amount(item.get("budget"), f"{where}.budget"))})
    return out


def submit_action_plan(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, phase2: dict | None = None,
                       actions: list | None = None, expected_version: int | None = None) -> Outcome:
    """The company files its plan: the phase-2 days and rate (Occitanie), or the numbered actions
    of a progress plan (Nouvelle-Aquitaine), as its line's `plan` says."""
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    if cmd.line.plan == "actions":
        plan = parse_actions(actions)
        cmd.move("submit_action_plan", {"plan_valid": lambda: None})
        cmd.dossier.actions = plan
        cmd.record("submit_action_plan", {"actions": plan})
    else:
        quote = Quote.parse(phase2, "phase2")
        cmd.move("submit_action_plan", {"plan_valid": lambda: check_phase_days(cmd.programme, 2, quote.days)})
        cmd.dossier.quotes = {**cmd.dossier.quotes, "2": quote.as_dict()}
        cmd.record("submit_action_plan", {"phase2": quote.as_dict()})
    _commit(uow, dossier_id)
    return cmd.outcome()



# -- the aid from recorded rule inputs (the estimate here, the proposal and the vote in council.py) --

def _prior_de_minimis(session, dossier: m.Dossier) -> list[PriorAid]:
    """The applicant's attestation for this dossier plus every aid Usine granted under de minimis
    to the single undertaking (the SIREN and its declared linked companies)."""
    sirens = [dossier.company_facts["siren"], *dossier.company_facts.get("linked_sirens", [])]
    rows = session.scalars(_DE_MINIMIS_OF_UNDERTAKING, {"dossier_id": dossier.id, "sirens": sirens}).all()
    return [PriorAid(r.granted_on, r.amount, r.source) for r in rows]


def rule_inputs(dossier: m.Dossier, prior: list[PriorAid], granted_on: date) -> dict:
    """Everything the aid computation reads, recorded in the decision event for re-computation."""
    return {
        "size_class": dossier.size_class, "equity": dossier.company_facts["equity"],
        "quotes": dossier.quotes, "granted_on": granted_on.isoformat(),
        "de_minimis_prior": [{"granted_on": a.granted_on.isoformat(), "amount": str(a.amount), "source": a.source}
                             for a in prior],
    }


def compute_from_inputs(programme: Programme, inputs: dict, *, de_minimis: bool = True) -> AidBreakdown:
    """The aid breakdown from recorded rule inputs: used at the vote and by audit replays alike.
    Without `de_minimis`, an estimate: no ceiling applied, no loan GGE (no base rate needed)."""
    granted_on = date.fromisoformat(inputs["granted_on"])
    room = None
    if de_minimis:
        prior = [PriorAid(date.fromisoformat(a["granted_on"]), Decimal(a["amount"]), a["source"])
                 for a in inputs["de_minimis_prior"]]
        room = headroom(regulations(), granted_on=granted_on, prior=prior)
    if "line_request" in inputs["quotes"]:
        request = LineRequest.from_record(inputs["quotes"]["line_request"])
        return compute_line_aid(programme, size_class=inputs["size_class"], request=request,
                                equity=Decimal(inputs["equity"]),
                                de_minimis_headroom=room.remaining if room else None,
                                de_minimis_regulation=room.regulation if room else None,
                                gge_of=_gge_at(programme, granted_on) if de_minimis else None)
    quotes = {int(k): Quote(v["days"], Decimal(v["day_rate"])) for k, v in inputs["quotes"].items()}
    return compute_aid(programme, size_class=inputs["size_class"], quotes=quotes,
                       equity=Decimal(inputs["equity"]), de_minimis_headroom=room.remaining if room else None,
                       de_minimis_regulation=room.regulation if room else None)


def _gge_at(programme: Programme, granted_on: date):
    """The loan's gross grant equivalent at the grant date, on the schedule it would have if
    disbursed that day (SPEC §11.3); refused where no base-rate period covers the date."""
    from rules.gge import loan_gge

    def gge_of(terms) -> dict:
        return loan_gge(terms.principal, terms.annual_rate, terms.deferral_months, terms.instalments, granted_on,
                        regulations(), margin=programme.money.gge_margin).as_dict()
    return gge_of
