"""Bulk actions on a selection of the queue (issue 19, part 4): take, assign to an officer,
request the same pieces, propose for a council session — for each dossier, the house's own
command (`services.assignment.assign_officer`, `services.commands.request_documents`,
`services.commands.propose_for_vote`) in its own unit of work. A refusal is that dossier's
result line and nothing of it is written; it never stops the others. The web's action bar and
the API's `POST /dossiers/bulk` are thin shells over `run_bulk`."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from rules import french
from rules.errors import ConcurrencyConflict, InvalidInput, NotFound, RuleViolation
from services import commands
from services.assignment import assign_officer
from services.clock import Clock
from services.commands import Actor
from services.commands.base import _list_of_kinds
from services.search import in_scope
from services.wording import KIND_LABELS

ACTIONS = {"take": "prendre en charge", "assign": "affecter à un(e) chargé(e) de mission",
           "request_documents": "demander les mêmes pièces", "propose": "proposer à une séance du conseil"}
MAX_SELECTION = 200


@dataclass
class BulkResult:
    dossier_id: int
    reference: str | None
    ok: bool
    line: str  # the French line the result page shows
    rule: str | None = None
    message: str | None = None
    state: str | None = None
    version: int | None = None
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"dossier_id": self.dossier_id, "reference": self.reference, "ok": self.ok, "line": self.line,
                "rule": self.rule, "message": self.message, "state": self.state, "version": self.version}


def _parameters(action: str, *, officer, kinds, session) -> dict:
    """The action's parameters, checked once before any dossier is touched."""
    if action not in ACTIONS:
        raise InvalidInput("action", f"action : l'une de {', '.join(ACTIONS)} (reçu « {action} »).")
    if action == "assign":
        if not isinstance(officer, str) or not officer.strip():
            raise InvalidInput("officer", "officer : choisissez le chargé ou la chargée de mission.")
        return {"officer": officer.strip()}
    if action == "request_documents":
        return {"kinds": _list_of_kinds(kinds, "kinds")}
    if action == "propose":
        if not isinstance(session, str) or not session.strip():
            raise InvalidInput("session", "session : choisissez la séance du conseil.")
        return {"session": session.strip()}
    return {}


def _selection(dossier_ids) -> list[int]:
    if not isinstance(dossier_ids, (list, tuple)) or not dossier_ids:
        raise InvalidInput("dossiers", "dossiers : cochez au moins un dossier.")
    ids = []
    for i, raw in enumerate(dossier_ids):
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            raise InvalidInput(f"dossiers[{i}]", f"dossiers[{i}] : un identifiant de dossier est attendu.")
        ids.append(raw)
    ids = list(dict.fromkeys(ids))
    if len(ids) > MAX_SELECTION:
        raise InvalidInput("dossiers", f"dossiers : {MAX_SELECTION} dossiers au plus à la fois.")
    return ids


def _done_text(action: str, outcome, params: dict) -> str:
    if action in ("take", "assign"):
        return f"affecté à {outcome.details.get('officer_name')}"
    if action == "request_documents":
        kinds = ", ".join(KIND_LABELS.get(k, k) for k in params["kinds"])
        return f"pièces demandées ({kinds}) ; caducité le {french.day(date.fromisoformat(outcome.details['lapse_on']))}"
    total = (outcome.details.get("aid") or {}).get("total")
    return f"proposé à la séance {params['session']}" + (f" (aide proposée {french.euros(total)})" if total else "")


class ItemLedger(Protocol):
    """Where a shell keeps each dossier's result of one bulk request, so that the request sent
    again (the API's `Idempotency-Key`) applies each command once: a dossier whose result is
    kept is answered from it, the others are run. `open` and `close` are called in the dossier's
    own unit of work (the result commits with its command); `refused` in a transaction of its own."""

    def recall(self, uow, index: int) -> dict | None: ...

    def open(self, uow, index: int) -> None: ...

    def close(self, uow, index: int, result: dict) -> None: ...

    def refused(self, index: int, result: dict) -> None: ...


def run_bulk(uow_factory, clock: Clock, actor: Actor, *, action: str, dossier_ids, officer: str | None = None,
             note: str | None = None, kinds=None, session: str | None = None,
             versions: dict[int, int] | None = None, ledger: ItemLedger | None = None) -> list[BulkResult]:
    """One command per selected dossier, each in its own unit of work, in the order selected."""
    params = _parameters(action, officer=officer, kinds=kinds, session=session)
    ids = _selection(dossier_ids)
    results = []
    for index, dossier_id in enumerate(ids):
        reference = None
        refusal = None
        try:
            with uow_factory() as uow:
                kept = ledger.recall(uow, index) if ledger is not None else None
                if kept is not None:
                    results.append(BulkResult(**kept))
                    continue
                try:
                    d = uow.dossier(dossier_id)
                except NotFound:
                    d = None
                if d is None or not in_scope(actor, d, uow.catalogue):
                    results.append(BulkResult(dossier_id, None, False,
                                              "Dossier introuvable ou hors de votre périmètre — rien n'a été fait.",
                                              rule="not_found", message="Dossier introuvable."))
                    continue
                reference = d.reference
                expected = (versions or {}).get(dossier_id)
                if ledger is not None:
                    ledger.open(uow, index)
                if action in ("take", "assign"):
                    out = assign_officer(uow=uow, clock=clock, actor=actor, dossier_id=dossier_id,
                                         officer=actor.name if action == "take" else params["officer"],
                                         note=note, expected_version=expected)
                elif action == "request_documents":
                    out = commands.request_documents(uow=uow, clock=clock, actor=actor, dossier_id=dossier_id,
                                                     kinds=params["kinds"], expected_version=expected)
                else:
                    out = commands.propose_for_vote(uow=uow, clock=clock, actor=actor, dossier_id=dossier_id,
                                                    session=params["session"], expected_version=expected)
                result = BulkResult(dossier_id, out.reference, True, f"{out.reference} — {_done_text(action, out, params)}",
                                    state=out.state, version=out.version, details=out.details)
                if ledger is not None:
                    ledger.close(uow, index, result.as_dict())
            results.append(result)
        except RuleViolation as exc:
            refusal = BulkResult(dossier_id, reference, False, f"{reference} — refusé : {exc.message}",
                                 rule=exc.rule, message=exc.message)
        except ConcurrencyConflict as exc:
            results.append(BulkResult(dossier_id, reference, False, f"{reference} — refusé : {exc}",
                                      rule="concurrency", message=str(exc)))
        except IntegrityError:
            if ledger is None:
                raise
            # The same request, sent twice at once, took this dossier's place in the ledger first.
            with uow_factory() as uow:
                kept = ledger.recall(uow, index)
            results.append(BulkResult(**kept) if kept is not None else BulkResult(
                dossier_id, reference, False, f"{reference} — refusé : traité en même temps par un autre envoi",
                rule="concurrency", message="Le dossier a été traité en même temps par un autre envoi."))
        if refusal is not None:
            if ledger is not None:
                ledger.refused(index, refusal.as_dict())
            results.append(refusal)
    return results


__all__ = ["ACTIONS", "BulkResult", "ItemLedger", "run_bulk", "MAX_SELECTION"]
