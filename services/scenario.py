"""The scenario runner (SCENARIOS.md): plays a dossier's life, written as data, through the real
services on a fresh database, the service clock set to each step's instant."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from db.engine import create_schema
from db.models_auth import ROLES as PERSON_ROLES
from programmes import Catalogue, default_catalogue
from rules.errors import ConcurrencyConflict, RuleViolation
from services import commands, loans, pathways
from services.audit.verify import verify_dossier
from services.clock import FrozenClock
from services.queries import adjustments_of, aid_of, notification_counts
from services.sweep import sweep
from services.uow import unit_of_work_factory

# The roles a scenario step may act as: a person's (db.models_auth.ROLES), never `system`.
ROLES = PERSON_ROLES
STEP_KEYS = {"at", "as", "do", "with", "expect", "note", "comment", "dossier"}
EXPECT_KEYS = {"state", "refused", "aid", "paid", "notifications", "adjustments", "events", "history_verified",
               "call", "loan", "dossiers"}
LOAN_KEYS = {"principal", "disbursed", "repaid", "interest_paid", "outstanding", "instalments", "next_due"}


class ScenarioFileError(Exception):
    """The file is not a scenario: names the step and field."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where} : {message}")
        self.where = where
        self.message = message


def _with(step: dict, key: str, default: Any = ...):
    w = step.get("with") or {}
    if key not in w:
        if default is ...:
            raise RuleViolation("invalid_input", f"with.{key} est obligatoire pour « {step['do']} ».", field=f"with.{key}")
        return default
    return w[key]


def _label(labels: dict, step: dict, key: str) -> int | None:
    """The dossier a `with` key names by its label (`cites`, `plan`)."""
    label = (step.get("with") or {}).get(key)
    if label is None:
        return None
    if label not in labels:
        raise RuleViolation("invalid_input", f"with.{key} : aucun dossier « {label} » dans ce scénario.", field=f"with.{key}")
    return labels[label]


# Each entry: (needs an existing dossier,
#              runner(step, uow, clock, actor, dossier_id, programme_id, labels) -> Outcome)
DISPATCH: dict[str, tuple[bool, Callable]] = {
    "submit_candidacy": (False, lambda s, u, c, a, d, p, labels={}: commands.submit_candidacy(
        uow=u, clock=c, actor=a, programme_id=p, company=_with(s, "company"),
        de_minimis_prior=_with(s, "de_minimis_prior", []), documents=_with(s, "documents", None),
        line=_with(s, "line", None), cites=_label(labels, s, "cites"))),
    "open_aid_dossier": (False, lambda s, u, c, a, d, p, labels={}: pathways.open_aid_dossier(
        uow=u, clock=c, actor=a, plan_id=_label(labels, s, "plan") if "plan" in (s.get("with") or {}) else _with(s, "plan"),
        actions=_with(s, "actions"), consulting=_with(s, "consulting", None), investment=_with(s, "investment", None))),
    "take_for_review": (True, lambda s, u, c, a, d, p: commands.take_for_review(uow=u, clock=c, actor=a, dossier_id=d)),
    "request_documents": (True, lambda s, u, c, a, d, p: commands.request_documents(
        uow=u, clock=c, actor=a, dossier_id=d, kinds=_with(s, "kinds"))),
    "provide_documents": (True, lambda s, u, c, a, d, p: commands.provide_documents(
        uow=u, clock=c, actor=a, dossier_id=d, kinds=_with(s, "kinds"))),
    "declare_eligible": (True, lambda s, u, c, a, d, p: commands.declare_eligible(
        uow=u, clock=c, actor=a, dossier_id=d, consultant=_with(s, "consultant", None), phase1=_with(s, "phase1", None),
        expenses=_with(s, "expenses", None), instruments=_with(s, "instruments", None))),
    "declare_ineligible": (True, lambda s, u, c, a, d, p: commands.declare_ineligible(
        uow=u, clock=c, actor=a, dossier_id=d, reason=_with(s, "reason"))),
    "accept_diagnostic": (True, lambda s, u, c, a, d, p: commands.accept_diagnostic(uow=u, clock=c, actor=a, dossier_id=d)),
    "submit_action_plan": (True, lambda s, u, c, a, d, p: commands.submit_action_plan(
        uow=u, clock=c, actor=a, dossier_id=d, phase2=_with(s, "phase2", None), actions=_with(s, "actions", None))),
    "propose_for_vote": (True, lambda s, u, c, a, d, p: commands.propose_for_vote(
        uow=u, clock=c, actor=a, dossier_id=d, session=_with(s, "session"))),
    "record_vote": (True, lambda s, u, c, a, d, p: commands.record_vote(
        uow=u, clock=c, actor=a, dossier_id=d, session=_with(s, "session"), outcome=_with(s, "outcome"),
        deliberation=_with(s, "deliberation", None))),
    "claim_payment": (True, lambda s, u, c, a, d, p: commands.claim_payment(
        uow=u, clock=c, actor=a, dossier_id=d, phase=_with(s, "phase"), kind=_with(s, "kind"),
        amount=_with(s, "amount", None), invoices=_with(s, "invoices", None))),
    "pay": (True, lambda s, u, c, a, d, p: commands.pay(uow=u, clock=c, actor=a, dossier_id=d)),
    "withdraw": (True, lambda s, u, c, a, d, p: commands.withdraw(
        uow=u, clock=c, actor=a, dossier_id=d, reason=_with(s, "reason"))),
    "disburse_loan": (True, lambda s, u, c, a, d, p: loans.disburse_loan(uow=u, clock=c, actor=a, dossier_id=d)),
    "record_repayment": (True, lambda s, u, c, a, d, p: loans.record_repayment(
        uow=u, clock=c, actor=a, dossier_id=d, amount=_with(s, "amount"), received_on=_with(s, "received_on"))),
    "write_off": (True, lambda s, u, c, a, d, p: loans.write_off(
        uow=u, clock=c, actor=a, dossier_id=d, reason=_with(s, "reason"))),
}
CREATING = ("submit_candidacy", "open_aid_dossier")
COMMANDS = tuple(DISPATCH) + ("sweep",)


def parse_instant(value, where: str) -> datetime:
    if not isinstance(value, str):
        raise ScenarioFileError(where, "« at » doit être un instant ISO 8601 avec fuseau")
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise ScenarioFileError(where, f"« at » : « {value} » n'est pas un instant ISO 8601") from None
    if instant.tzinfo is None:
        raise ScenarioFileError(where, f"« at » : « {value} » doit porter son fuseau (ex. +01:00)")
    return instant


def validate(doc: Any, catalogue: Catalogue) -> None:
    if not isinstance(doc, dict):
        raise ScenarioFileError("fichier", "un objet JSON est attendu")
    for key in ("name", "programme", "steps"):
        if key not in doc:
            raise ScenarioFileError(key, "champ obligatoire manquant")
    if not isinstance(doc["name"], str):
        raise ScenarioFileError("name", "texte attendu")
    if doc["programme"] not in catalogue.ids():
        raise ScenarioFileError("programme", f"programme inconnu « {doc['programme']} » (connus : {', '.join(catalogue.ids())})")
    if not isinstance(doc["steps"], list) or not doc["steps"]:
        raise ScenarioFileError("steps", "une liste non vide d'étapes est attendue")
    previous = None
    for i, step in enumerate(doc["steps"]):
        where = f"steps[{i}]"
        if not isinstance(step, dict):
            raise ScenarioFileError(where, "un objet est attendu")
        unknown = set(step) - STEP_KEYS
        if unknown:
            raise ScenarioFileError(f"{where}.{sorted(unknown)[0]}", "champ inconnu")
        if "at" not in step:
            raise ScenarioFileError(f"{where}.at", "champ obligatoire manquant")
        instant = parse_instant(step["at"], f"{where}.at")
        if previous is not None and instant < previous:
            raise ScenarioFileError(f"{where}.at", "les étapes doivent être dans l'ordre du temps")
        previous = instant
        if step.get("do") not in COMMANDS:
            raise ScenarioFileError(f"{where}.do", f"commande inconnue « {step.get('do')} » (connues : {', '.join(COMMANDS)})")
        if step["do"] != "sweep":
            if step.get("as") not in ROLES:
                raise ScenarioFileError(f"{where}.as", f"rôle inconnu « {step.get('as')} » (connus : {', '.join(ROLES)})")
        if "with" in step and not isinstance(step["with"], dict):
            raise ScenarioFileError(f"{where}.with", "un objet est attendu")
        if "dossier" in step and (not isinstance(step["dossier"], str) or not step["dossier"].strip()):
            raise ScenarioFileError(f"{where}.dossier", "une étiquette de dossier (texte) est attendue")
        _validate_expect(step.get("expect"), f"{where}.expect")
    _validate_expect(doc.get("expect"), "expect")


def _validate_expect(expect, where: str) -> None:
    if expect is None:
        return
    if not isinstance(expect, dict):
        raise ScenarioFileError(where, "un objet est attendu")
    unknown = set(expect) - EXPECT_KEYS
    if unknown:
        raise ScenarioFileError(f"{where}.{sorted(unknown)[0]}", f"attente inconnue (connues : {', '.join(sorted(EXPECT_KEYS))})")
    if "notifications" in expect:
        counts = expect["notifications"]
        if not isinstance(counts, dict):
            raise ScenarioFileError(f"{where}.notifications", "un objet {type: nombre} est attendu")
        for kind, n in counts.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ScenarioFileError(f"{where}.notifications.{kind}", "un nombre entier positif ou nul est attendu")
    if "aid" in expect:
        if not isinstance(expect["aid"], dict):
            raise ScenarioFileError(f"{where}.aid", "un objet {phase1, phase2, total} est attendu")
        for key, amount in expect["aid"].items():
            _expected_amount(amount, f"{where}.aid.{key}")
    if "paid" in expect:
        _expected_amount(expect["paid"], f"{where}.paid")
    if "loan" in expect:
        loan = expect["loan"]
        if not isinstance(loan, dict) or set(loan) - LOAN_KEYS:
            raise ScenarioFileError(f"{where}.loan", f"un objet aux clés {', '.join(sorted(LOAN_KEYS))} est attendu")
        for key in ("principal", "disbursed", "repaid", "interest_paid", "outstanding"):
            if key in loan:
                _expected_amount(loan[key], f"{where}.loan.{key}")
        if "instalments" in loan and (isinstance(loan["instalments"], bool) or not isinstance(loan["instalments"], int)):
            raise ScenarioFileError(f"{where}.loan.instalments", "un nombre entier est attendu")
        next_due = loan.get("next_due")
        if next_due is not None:
            if not isinstance(next_due, dict) or set(next_due) != {"date", "principal", "interest"}:
                raise ScenarioFileError(f"{where}.loan.next_due", "{date, principal, interest} ou null est attendu")
            _expected_amount(next_due["principal"], f"{where}.loan.next_due.principal")
            _expected_amount(next_due["interest"], f"{where}.loan.next_due.interest")
    if "dossiers" in expect:
        if where != "expect" or not isinstance(expect["dossiers"], dict):
            raise ScenarioFileError(f"{where}.dossiers", "un objet {étiquette: attentes} est attendu, dans l'attente finale")
        for label, sub in expect["dossiers"].items():
            if isinstance(sub, dict) and "dossiers" in sub:
                raise ScenarioFileError(f"{where}.dossiers.{label}.dossiers", "attente inconnue")
            _validate_expect(sub, f"{where}.dossiers.{label}")
    if "call" in expect and expect["call"] is not None and not isinstance(expect["call"], str):
        raise ScenarioFileError(f"{where}.call", "un code d'appel (texte) ou null est attendu")
    for key in ("state", "refused"):
        if key in expect and not isinstance(expect[key], str):
            raise ScenarioFileError(f"{where}.{key}", "une chaîne est attendue")
    if "events" in expect and (isinstance(expect["events"], bool) or not isinstance(expect["events"], int)):
        raise ScenarioFileError(f"{where}.events", "un nombre entier est attendu")


_AMOUNT = re.compile(r"^-?\d+\.\d{2}$")


def _expected_amount(value, where: str) -> None:
    """Amounts in a scenario are strings of euros with two decimals (SCENARIOS.md): a number
    would compare unequal to every amount, so the file is refused instead."""
    if not isinstance(value, str) or not _AMOUNT.match(value):
        raise ScenarioFileError(where, f"un montant en euros, chaîne à deux décimales, est attendu (ex. \"17500.00\"), reçu {value!r}")


@dataclass
class _Snapshot:
    state: str | None
    aid: dict | None
    paid: str
    notifications: dict
    adjustments: list
    events: int
    loan: dict | None = None
    call: str | None = None


def _snapshot(uow_factory, dossier_id: int | None) -> _Snapshot:
    if dossier_id is None:
        return _Snapshot(None, None, "0.00", {}, [], 0)
    from sqlalchemy import func, select

    from db import models as m
    with uow_factory() as uow:
        d = uow.dossier(dossier_id)
        events = uow.session.scalar(select(func.count()).select_from(m.Event).where(m.Event.dossier_id == d.id))
        return _Snapshot(d.status, aid_of(d), str(d.paid_total - d.recovered_total),
                         notification_counts(uow.session, d.id), adjustments_of(uow.session, d), events,
                         loans.loan_figures(uow.session, d), d.call_code)


def _final_of(snap: _Snapshot, verified: bool | None) -> dict:
    out = {"state": snap.state, "aid": snap.aid, "paid": snap.paid, "adjustments": snap.adjustments,
           "notifications": snap.notifications, "events": snap.events, "history_verified": verified}
    if snap.loan is not None:
        out["loan"] = snap.loan
    if snap.call is not None:
        out["call"] = snap.call
    return out


def _check(expect: dict | None, snap: _Snapshot, refused: dict | None, where: str, extra: dict | None = None) -> list[dict]:
    """Compare expectations with what happened; one entry per expectation, passed or not."""
    results = []
    if not expect:
        return results

    def add(key, ok, expected, actual):
        results.append({"where": where, "key": key, "ok": ok, "expected": expected, "actual": actual})

    if "refused" in expect:
        actual = refused["rule"] if refused else None
        add("refused", actual == expect["refused"], expect["refused"], actual)
    if "state" in expect:
        add("state", snap.state == expect["state"], expect["state"], snap.state)
    if "paid" in expect:
        add("paid", snap.paid == expect["paid"], expect["paid"], snap.paid)
    if "aid" in expect:
        actual = snap.aid or {}
        ok = all(actual.get(k) == v for k, v in expect["aid"].items())
        add("aid", ok, expect["aid"], snap.aid)
    if "notifications" in expect:
        actual = {k: snap.notifications.get(k, 0) for k in expect["notifications"]}
        add("notifications", actual == expect["notifications"], expect["notifications"], actual)
    if "adjustments" in expect:
        ok = all(a in snap.adjustments for a in expect["adjustments"])
        add("adjustments", ok, expect["adjustments"], snap.adjustments)
    if "events" in expect:
        add("events", snap.events == expect["events"], expect["events"], snap.events)
    if "call" in expect:
        add("call", snap.call == expect["call"], expect["call"], snap.call)
    if "loan" in expect:
        actual = snap.loan or {}
        ok = snap.loan is not None and all(actual.get(k) == v for k, v in expect["loan"].items())
        add("loan", ok, expect["loan"], snap.loan)
    if "history_verified" in expect and extra is not None:
        add("history_verified", extra.get("history_verified") == expect["history_verified"],
            expect["history_verified"], extra.get("history_verified"))
    return results


def run_scenario(doc: dict, *, database_url: str = "sqlite://", catalogue: Catalogue | None = None,
                 after_step: Callable | None = None) -> dict:
    """Play the scenario's steps; `after_step(uow_factory, clock)`, when given, runs after each
    step (a test's check of what the database holds between steps)."""
    catalogue = catalogue or default_catalogue()
    validate(doc, catalogue)
    uow_factory = unit_of_work_factory(database_url, catalogue=catalogue)
    create_schema(uow_factory.engine)
    clock = FrozenClock(parse_instant(doc["steps"][0]["at"], "steps[0].at"))
    dossier_id: int | None = None
    labels: dict[str, int] = {}
    step_outputs = []
    checks: list[dict] = []
    for index, step in enumerate(doc["steps"]):
        clock.set(parse_instant(step["at"], f"steps[{index}].at"))
        refused = None
        adjustments: list = []
        needs_dossier, runner = DISPATCH.get(step["do"], (False, None))
        label = step.get("dossier")
        # A step acts on its labelled dossier, or on the dossier created last.
        target = labels.get(label, dossier_id if label is None else None)
        try:
            if step["do"] == "sweep":
                sweep(uow_factory=uow_factory, clock=clock)
            elif needs_dossier and target is None:
                raise RuleViolation("not_allowed", f"Aucun dossier « {label} » n'existe encore dans ce scénario."
                                    if label else "Aucun dossier n'existe encore dans ce scénario.", field="dossier")
            else:
                actor = commands.Actor(name=f"{step['as']} (scénario)", role=step["as"])
                with uow_factory() as uow:
                    if step["do"] in CREATING:
                        outcome = runner(step, uow, clock, actor, target, doc["programme"], labels)
                    else:
                        outcome = runner(step, uow, clock, actor, target, doc["programme"])
                if step["do"] in CREATING:
                    dossier_id = target = outcome.dossier_id
                    if label is not None:
                        labels[label] = outcome.dossier_id
                adjustments = outcome.adjustments
        except RuleViolation as exc:
            refused = exc.as_dict()
        except ConcurrencyConflict as exc:  # pragma: no cover - a scenario is single-threaded
            refused = {"rule": "conflict", "message": str(exc)}
        shown = target if target is not None else (dossier_id if label is None else None)
        snap = _snapshot(uow_factory, shown)
        out = {"index": index, "do": step["do"], "ok": refused is None, "state": snap.state,
               "aid": snap.aid, "paid": snap.paid, "notifications": snap.notifications}
        if label is not None:
            out["dossier"] = label
        if snap.loan is not None:
            out["loan"] = snap.loan
        if snap.call is not None:
            out["call"] = snap.call
        if refused:
            out["refused"] = refused
        if adjustments:
            out["adjustments"] = adjustments
        step_outputs.append(out)
        if after_step is not None:
            after_step(uow_factory, clock)
        expect = step.get("expect") or {}
        checks += _check(expect, snap, refused, f"steps[{index}]")
        if refused and "refused" not in expect:
            checks.append({"where": f"steps[{index}]", "key": "ok", "ok": False, "expected": "accepted",
                           "actual": refused})
    snap = _snapshot(uow_factory, dossier_id)
    verified = None
    every = sorted(set(labels.values()) | ({dossier_id} if dossier_id is not None else set()))
    proofs: dict[int, bool] = {}
    if every:
        with uow_factory() as uow:
            proofs = {d: verify_dossier(uow.session, d).ok for d in every}
        verified = all(proofs.values())
    final = _final_of(snap, verified)
    top = dict(doc.get("expect") or {})
    per_label = top.pop("dossiers", None)
    if labels:
        final["dossiers"] = {}
        for name, d in labels.items():
            final["dossiers"][name] = _final_of(_snapshot(uow_factory, d), proofs.get(d))
    checks += _check(top, snap, None, "expect", {"history_verified": verified})
    for name, sub in (per_label or {}).items():
        if name not in labels:
            checks.append({"where": f"expect.dossiers.{name}", "key": "dossier", "ok": False,
                           "expected": "un dossier de ce nom", "actual": None})
            continue
        checks += _check(sub, _snapshot(uow_factory, labels[name]), None, f"expect.dossiers.{name}",
                         {"history_verified": proofs.get(labels[name])})
    if verified is False:
        checks.append({"where": "final", "key": "history_verified", "ok": False, "expected": True, "actual": False})
    failures = [c for c in checks if not c["ok"]]
    uow_factory.engine.dispose()
    return {"name": doc["name"], "steps": step_outputs, "final": final,
            "expectations": {"passed": len(checks) - len(failures), "failed": len(failures), "failures": failures}}


def run_file(path: str | Path, **kwargs) -> dict:
    try:
        doc = json.loads(Path(path).read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise ScenarioFileError("fichier", f"JSON invalide (ligne {exc.lineno}, colonne {exc.colno}) : {exc.msg}") from None
    return run_scenario(doc, **kwargs)
