"""Replay (SPEC §8): a dossier rebuilt from its events alone, as it stood at any instant.

The fold reads each event in sequence order and rebuilds what the commands wrote in the other
tables — state, amounts voted and paid, claims, documents and their versions, document requests
and their reminders — without reading those tables. On the way it re-computes every figure a
rule produced, with the rules of the programme version the event records (`programme`
"id@vN"): the lifecycle of `states/` for each state change, `compute_from_inputs` for the
proposal and the vote, `assess_final_claim` for a final claim, the payment arithmetic of `pay`,
the calendar for deadlines. A recorded figure that the rules do not give again is a
*discrepancy*, named with the event's sequence number.

`stored_state` reads the same shape from the tables, so `diff` can compare the two."""
from __future__ import annotations

import gc
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterable

from sqlalchemy import select

from db import models as m
from programmes import Catalogue, Programme, default_catalogue
from rules import french
from rules import loans as loan_rules
from rules import settlement as settlement_rules
from rules.calendar import PARIS, paris_date
from rules.documents import reminder_due_on, request_lapses_on
from rules.eligibility import CompanyFacts, check_eligibility
from rules.errors import InvalidInput, NotAllowed, RuleViolation
from rules.instruments import ExpenseWindow, assess_line_claim, validate_invoice_kinds
from rules.money import aid_figures, assess_final_claim, check_advance
from rules.settlement import (
    cancelled_remainder,
    de_minimis_granted,
    expense_window,
    invoices_in_days,
    loan_settled,
    payment_deadline,
    payment_due,
    subsidies_settled,
    voted_line,
)
from services.audit.records import EventRecord, iso, load_events_for_replay
from services.wording import fr_day, fr_instant
from states.lifecycle import GUARDS_PASSED, STATE_LABELS, fire

ZERO = Decimal("0.00")
REPLAY_VERSION = "1"


_PARIS_DAYS: dict[tuple, object] = {}


def _paris_day(at: datetime):
    """`paris_date`, remembered per UTC hour (the offset changes only on the hour)."""
    key = (at.year, at.month, at.day, at.hour)
    day = _PARIS_DAYS.get(key)
    if day is None:
        if len(_PARIS_DAYS) > 100000:
            _PARIS_DAYS.clear()
        day = _PARIS_DAYS[key] = paris_date(at)
    return day


# Events of services.messages: in the history, outside the lifecycle (no trigger, no state change).
NOTE_COMMANDS = frozenset({"send_message", "annotate", "invite_expert", "give_opinion"})


def _triggers(e: EventRecord) -> list[str]:
    """The lifecycle triggers a recorded command fired, in order."""
    c = e.command
    data = e.data or {}
    if c in ("start_candidacy", "assign_officer"):  # assign_officer: work sharing, no state change
        return []
    if c == "record_vote":
        return [f"vote_{data.get('outcome')}"]
    if c == "pay":
        return ["pay", "close"] if data.get("closed") else ["pay"]
    if c == "record_repayment":
        return ["record_repayment"] + (["cure_default"] if data.get("default_cured") else []) + \
            (["close"] if data.get("closed") else [])
    return [c]


def _money(value) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.01")))


@dataclass
class Discrepancy:
    seq: int | None
    command: str | None
    check: str
    recorded: Any
    recomputed: Any
    detail: str

    def as_dict(self) -> dict:
        return {"seq": self.seq, "command": self.command, "check": self.check, "recorded": self.recorded,
                "recomputed": self.recomputed, "detail": self.detail}


@dataclass
class Replay:
    """The dossier as it stood at `as_of`, from its events alone."""

    dossier_id: int
    reference: str
    as_of: datetime | None
    state: dict
    events_applied: int
    last_event: dict | None
    checks: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)
    # Documents handed in at the candidacy carry no hash in the event: the content Usine
    # generated for them is derivable from the event, in one of the instant's renderings.
    sha256_candidates: dict[tuple[str, int], list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def as_dict(self) -> dict:
        return {
            "replay_version": REPLAY_VERSION, "dossier_id": self.dossier_id, "reference": self.reference,
            "as_of": iso(self.as_of), "events_applied": self.events_applied, "last_event": self.last_event,
            "state": self.state,
            "recomputation": {"checks": self.checks, "ok": self.ok,
                              "discrepancies": [d.as_dict() for d in self.discrepancies]},
        }


_MOVES: dict[tuple, tuple] = {}


def _lifecycle_move(e: EventRecord, state: str, data: dict, shape: str) -> tuple:
    """What the lifecycle says of a recorded state change: () when it allows it, else the
    problems as (recorded, recomputed, detail). Each recorded trigger is fired through the
    machines of `states.lifecycle` (`fire`, as the commands do), by the recorded role, the
    guards taken as passed (`GUARDS_PASSED`: their figures are re-checked by the handlers)."""
    problems = []
    for trigger in _triggers(e):
        try:
            state = fire(state, trigger, role=e.role, guards=GUARDS_PASSED, shape=shape)
        except NotAllowed as refusal:
            problems.append((f"{e.state_before} → {e.state_after}", None,
                             f"« {trigger} » depuis « {state} » refusé par le cycle de vie : {refusal.message}"))
            return tuple(problems)
    if state != e.state_after:
        problems.append((e.state_after, state,
                         f"l'événement enregistre l'état « {e.state_after} », le cycle de vie donne « {state} »"))
    return tuple(problems)


class _Fold:
    def __init__(self, catalogue: Catalogue, dossier_id: int, reference: str):
        self.catalogue = catalogue
        self.dossier_id = dossier_id
        self.reference = reference
        self.status = "draft"
        self.programme_key: str | None = None
        self.company: dict | None = None
        self.size_class = None
        self.consultant = None
        self.officer = None
        self.quotes: dict = {}
        self.proposal = None
        self.session = None
        self.session_date = None
        self.voted = None
        self.aid_total: Decimal | None = None
        self.deliberation = None
        self.voted_on = None
        self.payment_deadline_on = None
        self.paid_total = ZERO
        self.recovered_total = ZERO
        self.cancelled_remainder: Decimal | None = None
        self.submitted_at = None
        self.updated_at = None
        self.closed_at = None
        self.claims: dict[int, dict] = {}
        self.payments: list[dict] = []
        self.recoveries: list[dict] = []
        self.documents: dict[tuple[str, int], dict] = {}
        self.requests: dict[int, dict] = {}
        self.de_minimis_attested: list[dict] = []
        self.de_minimis_granted: list[dict] = []
        self.checks = 0
        self.discrepancies: list[Discrepancy] = []
        self.sha256_candidates: dict[tuple[str, int], list[str]] = {}
        self._programmes: dict[str, Programme | None] = {}
        # SPEC §11: the line (and so the lifecycle's shape), the call, the plan's actions, the loan.
        self.line = 1
        self.shape = "diagnostic"
        self.call = None
        self.actions = None
        self.plan = None
        self.loan = None
        self.repayments: list[loan_rules.Repayment] = []
        self.written_off: Decimal | None = None

    # -- helpers -------------------------------------------------------------------------------
    def programme(self, e: EventRecord) -> Programme | None:
        key = e.programme
        if key not in self._programmes:
            try:
                pid, version = key.rsplit("@v", 1)
                self._programmes[key] = self.catalogue.get(pid, int(version))
            except (ValueError, RuleViolation):
                self._programmes[key] = None
                self.flag(e, "programme_unknown", key, None,
                          f"version de programme « {key} » introuvable : les règles ne peuvent être rejouées")
        return self._programmes[key]

    def flag(self, e: EventRecord | None, check: str, recorded, recomputed, detail: str) -> None:
        self.discrepancies.append(Discrepancy(e.seq if e else None, e.command if e else None, check,
                                              recorded, recomputed, detail))

    def compare(self, e: EventRecord, check: str, recorded, recomputed, detail: str) -> bool:
        self.checks += 1
        if recorded != recomputed:
            self.flag(e, check, recorded, recomputed, detail)
            return False
        return True

    def _net_paid(self, phase: int) -> Decimal:
        paid = sum((Decimal(p["amount"]) for p in self.payments if p["phase"] == phase), ZERO)
        recovered = sum((Decimal(r["amount"]) for r in self.recoveries if r["phase"] == phase), ZERO)
        return paid - recovered

    def _add_document(self, *, kind: str, version: int, filename: str, size: int | None, sha256: str | None,
                      e: EventRecord) -> None:
        self.documents[(kind, version)] = {
            "kind": kind, "version": version, "filename": filename, "size": size, "sha256": sha256,
            "uploaded_by": e.actor, "uploaded_role": e.role, "uploaded_at": self.at_iso,
            "review_status": "pending", "review_reason": None, "reviewed_by": None, "reviewed_at": None,
        }

    # -- the fold ------------------------------------------------------------------------------
    def apply(self, e: EventRecord) -> None:
        self.at_iso = e.at_iso or e.at.isoformat()
        if e.command == "open_aid_dossier":
            self.shape = "aid"  # the dossier is born on the aid line: its first move is that shape's
        self._move(e)
        handler = _HANDLERS.get(e.command)
        if handler is None:
            self.flag(e, "command_unknown", e.command, None, f"commande inconnue « {e.command} »")
        else:
            handler(self, e, e.data or {})
        self.updated_at = e.at

    def _move(self, e: EventRecord) -> None:
        """The state change, re-computed through the lifecycle's transitions."""
        command = e.command
        if command in NOTE_COMMANDS:
            # A message, an annotation, an expert's invitation or opinion (services.messages):
            # no trigger of the lifecycle, and the state must stay what it was.
            self.checks += 1
            if e.state_before != self.status or e.state_after != self.status:
                self.flag(e, "transition", f"{e.state_before} → {e.state_after}", self.status,
                          f"« {command} » ne change pas l'état du dossier (« {self.status} »)")
            self.status = e.state_after
            return
        if command in ("record_vote", "pay", "record_repayment"):
            data = e.data or {}
            key = (command, self.status, e.role, e.state_after, data.get("outcome"), bool(data.get("closed")),
                   bool(data.get("default_cured")), self.shape)
        else:
            key = (command, self.status, e.role, e.state_after, self.shape)
        outcome = _MOVES.get(key)
        if outcome is None:
            outcome = _MOVES[key] = _lifecycle_move(e, self.status, e.data or {}, self.shape)
        self.checks += 1
        if outcome:
            for problem in outcome:
                self.flag(e, "transition", *problem)
        self.status = e.state_after

    def on_start_candidacy(self, e, d) -> None:
        self._candidacy(e, d)

    def on_submit_candidacy(self, e, d) -> None:
        if d.get("from_draft"):
            return
        self._candidacy(e, d)

    def _candidacy(self, e, d) -> None:
        import hashlib

        from services.commands import Actor
        from services.commands.documents import _placeholder_content

        self.programme_key = e.programme
        self.company = d.get("company")
        self.submitted_at = e.at
        self.line = d.get("line", 1)
        self.call = d.get("call")
        self.de_minimis_attested = [{"granted_on": a["granted_on"], "amount": a["amount"]}
                                    for a in d.get("de_minimis_prior", [])]
        programme = self.programme(e)
        if programme is not None:
            try:
                self.shape = programme.line(self.line).shape
            except RuleViolation:
                self.flag(e, "line_unknown", self.line, None, f"ligne d'aide {self.line} inconnue du programme")
            call = programme.call_on(_paris_day(e.at)) if e.command == "submit_candidacy" else None
            if e.command == "submit_candidacy":
                self.compare(e, "call", d.get("call"), call.code if call else None, "appel ouvert au jour du dépôt")
        if programme is not None and "programme_hash" in d:
            self.compare(e, "programme_hash", d["programme_hash"], programme.content_hash,
                         "le fichier du programme a changé depuis le dépôt : les règles rejouées ne sont plus celles appliquées")
        actor = Actor(e.actor, e.role)
        for kind in d.get("documents", []):
            if isinstance(kind, dict):  # hashes recorded in the event
                self._add_document(kind=kind["kind"], version=kind.get("version", 1),
                                   filename=kind.get("filename", f"{kind['kind']}.txt"), size=kind.get("size"),
                                   sha256=kind.get("sha256"), e=e)
                continue
            self._add_document(kind=kind, version=1, filename=f"{kind}.txt", size=None, sha256=None, e=e)
            # The instant as the clock rendered it: Europe/Paris, UTC or a fixed French offset.
            candidates = []
            for tz in (PARIS, timezone.utc, timezone(timedelta(hours=1)), timezone(timedelta(hours=2))):
                content = _placeholder_content(self.reference, kind, actor, e.at.astimezone(tz))
                digest = hashlib.sha256(content).hexdigest()
                if digest not in candidates:
                    candidates.append(digest)
                self.documents[(kind, 1)]["size"] = len(content)
            self.sha256_candidates[(kind, 1)] = candidates

    def on_take_for_review(self, e, d) -> None:
        self.officer = d.get("officer", e.actor)

    def on_assign_officer(self, e, d) -> None:
        self.officer = d.get("officer")

    def on_request_documents(self, e, d) -> None:
        self.requests[d["request_id"]] = {
            "request_id": d["request_id"], "kinds": d["kinds"], "requested_by": e.actor, "requested_at": self.at_iso,
            "requested_on": d["requested_on"], "lapse_on": d["lapse_on"], "status": "open", "closed_at": None,
            "reminders": [],
        }
        programme = self.programme(e)
        if programme is not None:
            r = programme.reminders
            self.compare(e, "requested_on", d["requested_on"], _paris_day(e.at).isoformat(),
                         "jour de la demande (Europe/Paris)")
            self.compare(e, "lapse_on", d["lapse_on"],
                         request_lapses_on(_paris_day(e.at), lapse_after_days=r.lapse_after_days,
                                           shift_to_working_day=r.shift_to_working_day).isoformat(),
                         f"date de caducité : J+{r.lapse_after_days} (jour ouvré)")

    def on_provide_documents(self, e, d) -> None:
        for doc in d.get("documents", []):
            self._add_document(kind=doc["kind"], version=doc["version"], filename=doc["filename"],
                               size=doc.get("size"), sha256=doc.get("sha256"), e=e)
        for request_id in d.get("fulfilled_requests", []):
            req = self.requests.get(request_id)
            if req is None:
                self.flag(e, "request_unknown", request_id, None, f"demande de pièces {request_id} inconnue de l'historique")
                continue
            req["status"] = "fulfilled"
            req["closed_at"] = self.at_iso

    def on_review_document(self, e, d) -> None:
        doc = self.documents.get((d.get("kind"), d.get("version")))
        if doc is None:
            self.flag(e, "document_unknown", f"{d.get('kind')} v{d.get('version')}", None,
                      "pièce examinée absente de l'historique")
            return
        doc.update(review_status=d.get("decision"), review_reason=e.reason, reviewed_by=e.actor, reviewed_at=self.at_iso)

    def on_open_aid_dossier(self, e, d) -> None:
        self.programme_key = e.programme
        self.company = d.get("company")
        self.submitted_at = e.at
        self.line = d.get("line", 1)
        self.actions = d.get("actions")
        self.size_class = d.get("size_class")
        self.plan = d.get("plan")
        self.quotes = {"line_request": d.get("request")}
        self._estimate(e, d)
        programme = self.programme(e)
        if programme is not None and "programme_hash" in d:
            self.compare(e, "programme_hash", d["programme_hash"], programme.content_hash,
                         "le fichier du programme a changé depuis l'ouverture du dossier")

    def _estimate(self, e, d) -> None:
        """The amounts estimated at the eligibility decision (or an aid dossier's opening),
        recomputed without the de minimis ceiling, as the command computes them."""
        from services.commands import compute_from_inputs

        recorded = d.get("estimate")
        if recorded is None:
            return
        programme = self.programme(e)
        if programme is not None and self.size_class is not None:
            inputs = {"size_class": self.size_class, "equity": (self.company or {}).get("equity"),
                      "quotes": self.quotes, "granted_on": _paris_day(e.at).isoformat(), "de_minimis_prior": []}
            try:
                recomputed = compute_from_inputs(programme, inputs, de_minimis=False).to_record()
            except RuleViolation as exc:
                recomputed = {"refused": exc.rule}
            self.compare(e, "estimate", recorded, recomputed, "aide estimée recalculée avec les règles du programme")
        self.proposal = recorded | {"estimate": True}

    def on_declare_eligible(self, e, d) -> None:
        self.consultant = d.get("consultant")
        self.size_class = d.get("size_class")
        if "phase1" in d:
            self.quotes = {"1": d["phase1"]}
        if "request" in d:
            self.quotes = {"line_request": d["request"]}
        if d.get("company"):
            self.company = d["company"]
        programme = self.programme(e)
        if programme is not None and self.company is not None:
            try:
                size = check_eligibility(programme, CompanyFacts.parse(self.company))
            except RuleViolation as exc:
                size = f"refus : {exc.rule}"
            self.compare(e, "eligibility", d.get("size_class"), size,
                         "catégorie d'entreprise (éligibilité) selon les règles du programme")
        self._estimate(e, d)

    def on_declare_ineligible(self, e, d) -> None:
        self.closed_at = self.at_iso

    def on_accept_diagnostic(self, e, d) -> None:
        pass

    def on_submit_action_plan(self, e, d) -> None:
        if "actions" in d:
            self.actions = d["actions"]
        else:
            self.quotes = {**self.quotes, "2": d["phase2"]}

    def _recompute_aid(self, e, d, record_key: str, granted_on: str) -> None:
        from services.commands import compute_from_inputs

        inputs = d.get("rule_inputs")
        programme = self.programme(e)
        if inputs is None or programme is None:
            self.flag(e, "rule_inputs_missing", None, None, "entrées des règles absentes de l'événement")
            return
        # The inputs must be those the history gives.
        self.compare(e, "inputs.size_class", inputs.get("size_class"), self.size_class,
                     "catégorie d'entreprise enregistrée dans les entrées du calcul")
        self.compare(e, "inputs.quotes", inputs.get("quotes"), self.quotes, "devis (jours × taux) des phases")
        self.compare(e, "inputs.equity", inputs.get("equity"), (self.company or {}).get("equity"),
                     "capitaux propres déclarés")
        self.compare(e, "inputs.granted_on", inputs.get("granted_on"), granted_on, "date d'octroi retenue")
        attested = sorted((a["granted_on"], a["amount"]) for a in inputs.get("de_minimis_prior", [])
                          if a.get("source") == "attestation")
        self.compare(e, "inputs.de_minimis_attested", attested,
                     sorted((a["granted_on"], a["amount"]) for a in self.de_minimis_attested),
                     "aides de minimis attestées au dépôt")
        try:
            recomputed = compute_from_inputs(programme, inputs).to_record()
        except RuleViolation as exc:
            recomputed = {"refused": exc.rule}
        recorded = d.get(record_key)
        if self.compare(e, f"{record_key}.total", (recorded or {}).get("total"), recomputed.get("total"),
                        f"aide totale recalculée avec les règles de {e.programme}"):
            self.compare(e, record_key, recorded, recomputed, f"détail de l'aide recalculé avec les règles de {e.programme}")

    def on_propose_for_vote(self, e, d) -> None:
        self.session = d.get("session")
        self.session_date = d.get("session_date")
        self._recompute_aid(e, d, "proposal", d.get("session_date"))
        self.proposal = {**(d.get("proposal") or {}), "session": d.get("session")}

    def on_record_vote(self, e, d) -> None:
        outcome = d.get("outcome")
        # `session_not_held`: a vote at the session the dossier was proposed to is recorded on
        # or after that session's day (recorded with the proposal). A vote at another session
        # (an adjourned dossier's next one) carries no date of its own in its event.
        if d.get("session") == self.session and self.session_date:
            self.checks += 1
            held = date_of(self.session_date)
            if _paris_day(e.at) < held:
                self.flag(e, "session_not_held", _paris_day(e.at).isoformat(), self.session_date,
                          f"vote enregistré avant le jour de la séance {self.session} ({french.day(held)})")
        else:
            self.session_date = None
        self.session = d.get("session")
        if outcome == "approved":
            today = _paris_day(e.at)
            self._recompute_aid(e, d, "voted", today.isoformat())
            self.voted = d.get("voted")
            self.aid_total = _money((self.voted or {}).get("subsidy_total") or (self.voted or {}).get("total"))
            self.deliberation = d.get("deliberation")
            self.voted_on = today.isoformat()
            self.payment_deadline_on = d.get("payment_deadline_on")
            programme = self.programme(e)
            if programme is not None:
                due = payment_deadline(self._window(programme).ends_on, programme.money.payment_deadline_months,
                                       shift_to_working_day=programme.reminders.shift_to_working_day)
                self.compare(e, "payment_deadline_on", d.get("payment_deadline_on"), due.isoformat() if due else None,
                             "date limite de demande de solde (date limite des dépenses + délai du programme)")
            regulation = (self.voted or {}).get("de_minimis_regulation")
            for amount in de_minimis_granted(self.voted):
                self.de_minimis_granted.append({"granted_on": today.isoformat(), "amount": _s(amount),
                                                "regulation": regulation})
        elif outcome == "rejected":
            self.deliberation = d.get("deliberation")
            self.closed_at = self.at_iso
        else:
            self.proposal = {**(self.proposal or {}), "adjourned": True}

    def _window(self, programme) -> ExpenseWindow:
        return expense_window(months_after_vote=programme.money.expense_window_months_after_vote,
                              expense_cutoff=programme.money.expense_cutoff, submitted_on=_paris_day(self.submitted_at),
                              voted_on=date_of(self.voted_on) if self.voted_on else None)

    def on_claim_payment(self, e, d) -> None:
        phase, kind = d.get("phase"), d.get("kind")
        claim = {"claim_id": d.get("claim_id"), "phase": phase, "kind": kind,
                 "amount_claimed": d.get("amount") if kind == "advance" else (d.get("assessment") or {}).get("claimed_expense"),
                 "invoices": d.get("invoices") or [], "assessment": d.get("assessment"), "status": "pending",
                 "claimed_at": self.at_iso, "paid_at": None}
        self.claims[claim["claim_id"]] = claim
        programme = self.programme(e)
        line = voted_line(self.voted, phase)
        if programme is None:
            return
        if line is None:
            self.flag(e, "claim_phase", phase, None, f"phase {phase} non votée selon l'historique")
            return
        if kind == "advance":
            advances = sum((Decimal(c["amount_claimed"]) for c in self.claims.values()
                            if c["phase"] == phase and c["kind"] == "advance" and c is not claim), ZERO)
            self.checks += 1
            try:
                check_advance(programme, phase=phase, amount=Decimal(d["amount"]), voted_aid=Decimal(line["aid"]),
                              advances_so_far=advances)
            except RuleViolation as exc:
                self.flag(e, "advance_cap", d.get("amount"), exc.rule, exc.message)
        else:
            try:
                invoices = validate_invoice_kinds(d.get("invoices") or [],
                                                  consulting=invoices_in_days(self.voted, phase))
                if (self.voted or {}).get("by_instrument"):
                    recomputed = assess_line_claim(programme, size_class=self.size_class, voted_line=line,
                                                   invoices=invoices, window=self._window(programme)).to_record()
                else:
                    recomputed = assess_final_claim(programme, phase=phase, invoices=invoices,
                                                    voted_aid=Decimal(line["aid"]),
                                                    voted_expense=Decimal(line["eligible_expense"]),
                                                    window=self._window(programme)).to_record()
            except RuleViolation as exc:
                recomputed = {"refused": exc.rule}
            recorded = d.get("assessment") or {}
            if self.compare(e, "assessment.justified_aid", recorded.get("justified_aid"), recomputed.get("justified_aid"),
                            f"aide justifiée de la phase {phase} recalculée sur les factures"):
                self.compare(e, "assessment", recorded, recomputed, "détail de l'instruction de la demande de solde")

    def on_pay(self, e, d) -> None:
        claim = self.claims.get(d.get("claim_id"))
        if claim is None:
            self.flag(e, "claim_unknown", d.get("claim_id"), None, "paiement d'une demande absente de l'historique")
            return
        phase = claim["phase"]
        line = voted_line(self.voted, phase)
        advance = claim["kind"] == "advance"
        due = payment_due(kind=claim["kind"], claimed=Decimal(claim["amount_claimed"]) if advance else ZERO,
                          justified_aid=None if advance else Decimal((claim["assessment"] or {}).get("justified_aid", "0")),
                          voted_aid=Decimal(line["aid"]) if line else ZERO, net_paid_before=self._net_paid(phase))
        self.compare(e, "pay.amount", d.get("amount"), _s(due.amount), f"montant payé (phase {phase}, {claim['kind']})")
        self.compare(e, "pay.recovery", d.get("recovery"), _s(due.recovery), "ordre de reversement")
        recorded_amount = _money(d.get("amount")) or ZERO
        recorded_recovery = _money(d.get("recovery"))
        if recorded_recovery is not None:
            self.recoveries.append({"claim_id": claim["claim_id"], "phase": phase, "amount": _s(recorded_recovery),
                                    "issued_at": self.at_iso})
            self.recovered_total += recorded_recovery
        else:
            self.payments.append({"claim_id": claim["claim_id"], "phase": phase, "kind": claim["kind"],
                                  "amount": _s(recorded_amount), "paid_at": self.at_iso})
            self.paid_total += recorded_amount
        claim["status"], claim["paid_at"] = "paid", self.at_iso
        self.compare(e, "pay.paid_total", d.get("paid_total"), _s(self.paid_total - self.recovered_total),
                     "total net payé après ce paiement")
        self.compare(e, "pay.closing", bool(d.get("closed")), self._subsidies_settled() and self._loan_settled(),
                     "clôture : toutes les phases votées ont leur solde payé (et le prêt est remboursé)")
        if d.get("closed"):
            self._close(e)

    def _subsidies_settled(self) -> bool:
        return subsidies_settled(self.voted, {c["phase"] for c in self.claims.values()
                                              if c["kind"] == "final" and c["status"] == "paid"})

    def _loan_settled(self) -> bool:
        outstanding = None
        if self.loan is not None and loan_rules.voted_loan_terms(self.voted) is not None:
            outstanding = self._loan_status().outstanding
        return loan_settled(self.voted, outstanding)

    def _plan(self):
        return loan_rules.schedule_of(self.loan)

    def _loan_status(self):
        return loan_rules.loan_status(self._plan(), self.repayments)

    def _loan_figures(self) -> dict | None:
        return loan_rules.loan_figures(self.voted, None if self.loan is None else self._plan(), self.repayments,
                                       self.written_off)

    def on_disburse_loan(self, e, d) -> None:
        self.loan = d.get("loan")
        voted = loan_rules.voted_loan_terms(self.voted)
        if voted is None or self.loan is None:
            self.flag(e, "loan_unknown", None, None, "versement d'un prêt que l'historique ne vote pas")
            return
        self.compare(e, "loan.principal", self.loan["principal"], voted["principal"], "principal versé = principal voté")
        self.compare(e, "loan.disbursed_on", self.loan["disbursed_on"], _paris_day(e.at).isoformat(),
                     "jour du versement (Europe/Paris)")
        self.compare(e, "loan.instalments", d.get("instalments"), len(self._plan()), "échéances de l'échéancier")

    def on_record_repayment(self, e, d) -> None:
        if self.loan is None:
            self.flag(e, "loan_unknown", None, None, "remboursement d'un prêt non versé selon l'historique")
            return
        try:
            result = loan_rules.apply_repayment(self._plan(), self.repayments, Decimal(d["amount"]),
                                                date_of(d["received_on"]))
        except (RuleViolation, KeyError, ArithmeticError) as exc:
            self.flag(e, "repayment", d.get("amount"), getattr(exc, "rule", str(exc)),
                      "remboursement refusé par les règles du prêt")
            return
        self.repayments.append(result.repayment)
        self.compare(e, "repayment.allocation", (d.get("principal"), d.get("interest")),
                     (str(result.principal), str(result.interest)), "capital et intérêts réglés (plus ancienne échéance d'abord)")
        self.compare(e, "repayment.outstanding", d.get("outstanding"), str(result.status.outstanding), "capital restant dû")
        if d.get("closed"):
            self.compare(e, "repayment.closing", True, result.status.repaid_in_full and self._subsidies_settled(),
                         "clôture : prêt remboursé et subventions soldées")
            self._close(e)

    def on_remind_repayment(self, e, d) -> None:
        pass

    def on_declare_default(self, e, d) -> None:
        if self.loan is None:
            return
        self.compare(e, "default.due", True, loan_rules.in_default(self._plan(), self.repayments, _paris_day(e.at)),
                     "une échéance reste impayée 60 jours après son terme")

    def on_write_off(self, e, d) -> None:
        outstanding = self._loan_status().outstanding if self.loan is not None else ZERO
        self.compare(e, "write_off.amount", d.get("written_off"), _s(outstanding), "montant passé en perte = capital restant dû")
        self.written_off = outstanding
        self._close(e)

    def _close(self, e) -> Decimal:
        self.cancelled_remainder = cancelled_remainder(self.aid_total, self.paid_total - self.recovered_total)
        self.closed_at = self.at_iso
        return self.cancelled_remainder

    def on_close(self, e, d) -> None:
        remainder = self._close(e)
        self.compare(e, "close.cancelled_remainder", d.get("cancelled_remainder"), _s(remainder),
                     "reliquat annulé = aide votée − total net payé")
        self.compare(e, "close.payment_deadline_on", d.get("payment_deadline_on"), self.payment_deadline_on,
                     "date limite de demande de solde")
        if self.payment_deadline_on:
            self.compare(e, "close.due", True, _paris_day(e.at).isoformat() > self.payment_deadline_on,
                         "la clôture pour délai expiré intervient après la date limite")

    def on_withdraw(self, e, d) -> None:
        self.closed_at = self.at_iso
        self._close_requests(e, "closed")

    def on_lapse(self, e, d) -> None:
        self.closed_at = self.at_iso
        req = self.requests.get(d.get("request_id"))
        if req is not None:
            self.compare(e, "lapse.due", True, _paris_day(e.at).isoformat() >= req["lapse_on"],
                         f"caducité prononcée le {fr_day(_paris_day(e.at))} pour une échéance au {fr_day(req['lapse_on'])}")
        self._close_requests(e, "lapsed")

    def on_send_message(self, e, d) -> None:
        """A message (services.messages): no state, amount or piece of the dossier changes."""

    def on_annotate(self, e, d) -> None:
        """An agents' private annotation: nothing of the dossier changes."""

    def on_invite_expert(self, e, d) -> None:
        """An expert asked for an opinion: nothing of the dossier changes."""

    def on_give_opinion(self, e, d) -> None:
        """An expert's opinion: nothing of the dossier changes."""

    def on_anonymise(self, e, d) -> None:
        """RGPD retention (services.retention): personal data redacted in the events before it;
        no state, amount or piece changes (its pieces' files are deleted, their hashes kept)."""

    def _close_requests(self, e, status: str) -> None:
        for req in self.requests.values():
            if req["status"] == "open":
                req["status"], req["closed_at"] = status, self.at_iso

    def on_remind(self, e, d) -> None:
        req = self.requests.get(d.get("request_id"))
        if req is None:
            self.flag(e, "request_unknown", d.get("request_id"), None, "relance d'une demande absente de l'historique")
            return
        req["reminders"].append({"after_days": d.get("after_days"), "kind": d.get("kind"), "at": self.at_iso})
        programme = self.programme(e)
        if programme is not None:
            r = programme.reminders
            due = reminder_due_on(date_of(req["requested_on"]), d.get("after_days") or 0,
                                  shift_to_working_day=r.shift_to_working_day)
            self.compare(e, "remind.due", True, _paris_day(e.at) >= due, f"relance J+{d.get('after_days')} due le {fr_day(due)}")

    # -- the result ----------------------------------------------------------------------------
    def state(self, as_of: datetime | None) -> dict:
        return build_state(
            reference=self.reference, programme=self.programme_key, status=self.status, company=self.company,
            size_class=self.size_class, consultant=self.consultant, officer=self.officer, quotes=self.quotes,
            proposal=self.proposal, session=self.session, voted=self.voted, aid_total=self.aid_total,
            deliberation=self.deliberation, voted_on=self.voted_on, payment_deadline_on=self.payment_deadline_on,
            paid_total=self.paid_total, recovered_total=self.recovered_total,
            cancelled_remainder=self.cancelled_remainder, submitted_at=iso(self.submitted_at),
            updated_at=iso(self.updated_at), closed_at=self.closed_at, claims=list(self.claims.values()),
            payments=self.payments, recoveries=self.recoveries, documents=list(self.documents.values()),
            requests=list(self.requests.values()), de_minimis_attested=self.de_minimis_attested,
            de_minimis_granted=self.de_minimis_granted, catalogue=self.catalogue, as_of=as_of,
            line=self.line, call=self.call, actions=self.actions,
            loan=self._loan_figures(),
            written_off=self.written_off,
        )


_HANDLERS = {name[3:]: fn for name, fn in vars(_Fold).items() if name.startswith("on_")}


def date_of(value: str):
    from datetime import date

    return date.fromisoformat(value)


def build_state(*, reference, programme, status, company, size_class, consultant, officer, quotes, proposal,
                session, voted, aid_total, deliberation, voted_on, payment_deadline_on, paid_total,
                recovered_total, cancelled_remainder, submitted_at, updated_at, closed_at, claims, payments,
                recoveries, documents, requests, de_minimis_attested, de_minimis_granted, catalogue,
                as_of: datetime | None, line=1, call=None, actions=None, loan=None, written_off=None) -> dict:
    """The one shape of a dossier's state, for the replay and the stored tables alike."""
    from services.queries import ESTIMATED_STATES

    record = voted or (proposal if status in ESTIMATED_STATES else None)
    aid = aid_figures(record) if record and "lines" in record else None
    net = paid_total - recovered_total
    requests = sorted(requests, key=lambda r: r["request_id"])
    open_requests = [_outlook(r, programme, catalogue, as_of) for r in requests if r["status"] == "open"]
    return {
        "reference": reference, "programme": programme, "status": status,
        "status_label": STATE_LABELS.get(status, status),
        "company": company, "size_class": size_class, "consultant": consultant, "officer": officer,
        "quotes": quotes, "proposal": proposal, "session": session,
        "vote": {"deliberation": deliberation, "voted_on": voted_on, "voted": voted},
        "amounts": {
            "aid": aid, "aid_total": _s(aid_total), "paid_total": _s(paid_total),
            "recovered_total": _s(recovered_total), "net_paid": _s(net),
            "remaining": None if aid_total is None or closed_at else _s(settlement_rules.cancelled_remainder(aid_total, net)),
            "cancelled_remainder": _s(cancelled_remainder),
        },
        "payment_deadline_on": payment_deadline_on,
        "claims": sorted(claims, key=lambda c: c["claim_id"]),
        "payments": sorted(payments, key=lambda p: p["claim_id"]),
        "recoveries": sorted(recoveries, key=lambda r: r["claim_id"]),
        "documents": sorted(documents, key=lambda d: (d["kind"], d["version"])),
        "document_requests": requests,
        "open_requests": open_requests,
        "de_minimis": {"attested": sorted(de_minimis_attested, key=lambda a: (a["granted_on"], a["amount"])),
                       "granted": sorted(de_minimis_granted, key=lambda a: (a["granted_on"], a["amount"]))},
        "submitted_at": submitted_at, "updated_at": updated_at, "closed_at": closed_at,
        "line": line, "call": call, "actions": actions, "loan": loan, "written_off": _s(written_off),
    }


def _outlook(req: dict, programme_key: str | None, catalogue: Catalogue, as_of: datetime | None) -> dict:
    """An open request with its deadlines: the lapse date and the next reminder the programme plans."""
    out = {"request_id": req["request_id"], "kinds": req["kinds"], "requested_on": req["requested_on"],
           "lapse_on": req["lapse_on"], "reminders_sent": len(req["reminders"]), "next_reminder": None}
    try:
        pid, version = (programme_key or "").rsplit("@v", 1)
        r = catalogue.get(pid, int(version)).reminders
    except (ValueError, RuleViolation):
        return out
    sent = {x["after_days"] for x in req["reminders"]}
    start = date_of(req["requested_on"])
    for step in r.steps:
        if step.after_days not in sent:
            out["next_reminder"] = {"after_days": step.after_days, "kind": step.kind,
                                    "on": reminder_due_on(start, step.after_days,
                                                          shift_to_working_day=r.shift_to_working_day).isoformat()}
            break
    if as_of is not None:
        out["days_left"] = (date_of(req["lapse_on"]) - paris_date(as_of)).days
    return out


def replay_events(events: Iterable[EventRecord], *, dossier_id: int, reference: str, at: datetime | None = None,
                  catalogue: Catalogue | None = None) -> Replay:
    """Fold the events (already in sequence order) up to `at` included."""
    fold = _Fold(catalogue or default_catalogue(), dossier_id, reference)
    last = None
    n = 0
    for e in events:
        if at is not None and e.at > at:
            break
        fold.apply(e)
        last = e
        n += 1
    last_event = None if last is None else {"seq": last.seq, "at": iso(last.at), "command": last.command, "hash": last.hash}
    return Replay(dossier_id, reference, at, fold.state(at), n, last_event, fold.checks, fold.discrepancies,
                  fold.sha256_candidates)


def replay_dossier(session, dossier_id: int, *, at: datetime | None = None,
                   catalogue: Catalogue | None = None, reference: str | None = None) -> Replay:
    """Replay from the events table alone (the dossier row is not read, except for its reference
    when the history is empty)."""
    if at is not None and at.tzinfo is None:
        raise ValueError("at : un instant avec fuseau est attendu")
    # Tens of thousands of small objects are made and kept: the cyclic collector would walk
    # them again and again for nothing (nothing here makes cycles).
    collecting = gc.isenabled()
    gc.disable()
    try:
        events = load_events_for_replay(session, dossier_id, until=at)
        if reference is None:
            reference = events[0].dossier_reference if events else session.scalar(
                select(m.Dossier.reference).where(m.Dossier.id == dossier_id))
        return replay_events(events, dossier_id=dossier_id, reference=reference, at=at, catalogue=catalogue)
    finally:
        if collecting:
            gc.enable()


BEFORE_FIRST_EVENT = "before_first_event"


@dataclass(frozen=True)
class HistoryBounds:
    """A dossier's first and last events (sequence order): (seq, instant, command) each."""

    first: tuple[int, datetime, str] | None
    last: tuple[int, datetime, str] | None


def history_bounds(session, dossier_id: int) -> HistoryBounds:
    """The first and last events of a dossier, two indexed reads."""
    def one(order):
        row = session.execute(select(m.Event.seq, m.Event.at, m.Event.command)
                              .where(m.Event.dossier_id == dossier_id).order_by(order).limit(1)).first()
        return None if row is None else (row.seq, row.at, row.command)

    return HistoryBounds(one(m.Event.seq.asc()), one(m.Event.seq.desc()))


def check_replay_request(bounds: HistoryBounds, *, reference: str, at: datetime | None, compare: bool,
                         at_field: str = "at", diff_field: str = "diff") -> None:
    """The two refusals of an auditor's replay request, named by field (`at_field`, `diff_field`:
    the names the caller's user typed, `--at` on the command line, `at` on the API):

    - an instant before the dossier's first event: the dossier did not exist yet — a
      `RuleViolation` `before_first_event` on `at`, naming the first event's date (a replay
      would otherwise show an empty draft that never was);
    - a comparison with the tables (`diff`) at an instant before the last event: the tables hold
      only the present, so such a comparison would always differ — an `InvalidInput` on `diff`.
    """
    if at is None:
        return
    if bounds.first is not None and at < bounds.first[1]:
        seq, first_at, command = bounds.first
        raise RuleViolation(
            BEFORE_FIRST_EVENT,
            f"Le dossier {reference} n'existait pas encore le {fr_instant(at)} (heure de Paris) : "
            f"son premier événement (n°{seq}, {command}) date du {fr_instant(first_at)}. "
            f"Choisissez un instant postérieur.",
            field=at_field, first_event_at=iso(first_at), first_event_seq=seq)
    if compare and bounds.last is not None and at < bounds.last[1]:
        seq, last_at, _ = bounds.last
        raise InvalidInput(
            diff_field,
            f"{diff_field} compare le dossier rejoué avec l'état enregistré actuel (les tables ne gardent que le "
            f"présent) : il ne peut être combiné avec un instant passé ({at_field} = {fr_instant(at)}, antérieur au "
            f"dernier événement du dossier, n°{seq} du {fr_instant(last_at)}). Rejouez sans {diff_field} pour voir "
            f"le dossier à cet instant, ou sans {at_field} (ou à un instant postérieur) pour le comparer aux tables.")


def audit_replay(session, dossier_id: int, *, at: datetime | None = None, compare: bool = False,
                 catalogue: Catalogue | None = None, at_field: str = "at",
                 diff_field: str = "diff") -> tuple[Replay, list[dict] | None]:
    """An auditor's replay request (CLI `usine audit replay`, API `/audit/dossiers/{id}/replay`):
    the replay at `at`, and with `compare` its differences with the stored state — refused as
    `check_replay_request` says. Returns (replay, differences or None)."""
    bounds = history_bounds(session, dossier_id)
    reference = session.scalar(select(m.Dossier.reference).where(m.Dossier.id == dossier_id)) or str(dossier_id)
    check_replay_request(bounds, reference=reference, at=at, compare=compare, at_field=at_field,
                         diff_field=diff_field)
    result = replay_dossier(session, dossier_id, at=at, catalogue=catalogue)
    differences = None
    if compare:
        differences = diff(result, stored_state(session, dossier_id, catalogue=catalogue, as_of=at))
    return result, differences


# -- the stored side ---------------------------------------------------------------------------

def stored_state(session, dossier_id: int, *, catalogue: Catalogue | None = None,
                 as_of: datetime | None = None) -> dict:
    """The dossier as the tables hold it now, in the replay's shape."""
    from services.loans import loan_figures

    d = session.get(m.Dossier, dossier_id)
    s = session
    claims = [{"claim_id": c.id, "phase": c.phase, "kind": c.kind, "amount_claimed": _s(c.amount_claimed),
               "invoices": c.invoices, "assessment": c.assessment, "status": c.status,
               "claimed_at": iso(c.claimed_at), "paid_at": iso(c.paid_at)}
              for c in s.scalars(select(m.PaymentClaim).where(m.PaymentClaim.dossier_id == dossier_id))]
    payments = [{"claim_id": p.claim_id, "phase": p.phase, "kind": p.kind, "amount": _s(p.amount), "paid_at": iso(p.paid_at)}
                for p in s.scalars(select(m.Payment).where(m.Payment.dossier_id == dossier_id))]
    recoveries = [{"claim_id": r.claim_id, "phase": r.phase, "amount": _s(r.amount), "issued_at": iso(r.issued_at)}
                  for r in s.scalars(select(m.RecoveryOrder).where(m.RecoveryOrder.dossier_id == dossier_id))]
    documents = [{"kind": x.kind, "version": x.version, "filename": x.filename, "size": x.size, "sha256": x.sha256,
                  "uploaded_by": x.uploaded_by, "uploaded_role": x.uploaded_role, "uploaded_at": iso(x.uploaded_at),
                  "review_status": x.review_status, "review_reason": x.review_reason, "reviewed_by": x.reviewed_by,
                  "reviewed_at": iso(x.reviewed_at)}
                 for x in s.scalars(select(m.Document).where(m.Document.dossier_id == dossier_id))]
    reminders: dict[int, list[dict]] = {}
    prefix = f"{d.reference}:docreq:"
    for n in s.scalars(select(m.Notification).where(
            m.Notification.dossier_id == dossier_id,
            m.Notification.kind.in_(("documents_reminder", "documents_final_notice")))):
        if n.dedupe_key.startswith(prefix):
            request_id, after_days = n.dedupe_key[len(prefix):].split(":")[:2]
            reminders.setdefault(int(request_id), []).append(
                {"after_days": int(after_days), "kind": n.kind, "at": iso(n.created_at)})
    requests = [{"request_id": r.id, "kinds": r.kinds, "requested_by": r.requested_by, "requested_at": iso(r.requested_at),
                 "requested_on": r.requested_on.isoformat(), "lapse_on": r.lapse_on.isoformat(), "status": r.status,
                 "closed_at": iso(r.closed_at),
                 "reminders": sorted(reminders.get(r.id, []), key=lambda x: (x["at"], x["after_days"]))}
                for r in s.scalars(select(m.DocumentRequest).where(m.DocumentRequest.dossier_id == dossier_id))]
    aids = list(s.scalars(select(m.DeMinimisAid).where(m.DeMinimisAid.dossier_id == dossier_id)))
    attested = [{"granted_on": a.granted_on.isoformat(), "amount": _s(a.amount)} for a in aids if a.source == "attestation"]
    granted = [{"granted_on": a.granted_on.isoformat(), "amount": _s(a.amount), "regulation": a.regulation}
               for a in aids if a.source == "usine"]
    return build_state(
        reference=d.reference, programme=f"{d.programme_id}@v{d.programme_version}", status=d.status,
        company=d.company_facts, size_class=d.size_class, consultant=d.consultant, officer=d.officer,
        quotes=d.quotes, proposal=d.proposal, session=d.session.code if d.session is not None else None,
        voted=d.voted, aid_total=d.aid_total, deliberation=d.deliberation,
        voted_on=d.voted_on.isoformat() if d.voted_on else None,
        payment_deadline_on=d.payment_deadline_on.isoformat() if d.payment_deadline_on else None,
        paid_total=d.paid_total, recovered_total=d.recovered_total, cancelled_remainder=d.cancelled_remainder,
        submitted_at=iso(d.submitted_at), updated_at=iso(d.updated_at), closed_at=iso(d.closed_at),
        claims=claims, payments=payments, recoveries=recoveries, documents=documents, requests=requests,
        de_minimis_attested=attested, de_minimis_granted=granted, catalogue=catalogue or default_catalogue(),
        as_of=as_of, line=d.line, call=d.call_code, actions=d.actions, loan=loan_figures(s, d),
        written_off=d.written_off,
    )


def diff(replay: Replay, stored: dict) -> list[dict]:
    """Every path where the replayed state and the stored one differ."""
    out: list[dict] = []
    _diff(replay.state, stored, "", out, replay)
    return out


def _diff(a, b, path: str, out: list[dict], replay: Replay) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            _diff(a.get(key), b.get(key), f"{path}.{key}" if path else str(key), out, replay)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{path}[{i}]", out, replay)
        return
    if a == b:
        return
    if path.endswith(".sha256") and a is None and path.startswith("documents["):
        # A candidacy document: the event records its kind, not its hash; the content Usine
        # generated for it is derivable from the event.
        index = int(path[len("documents["):path.index("]")])
        doc = replay.state["documents"][index]
        if b in replay.sha256_candidates.get((doc["kind"], doc["version"]), []):
            return
    out.append({"path": path, "replayed": a, "stored": b})
