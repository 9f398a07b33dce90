"""`POST /dossiers/{id}/commands/{command}`: one route per command of SCENARIOS.md, whose body is
the scenario step's `with` object. The answer: the dossier's new state and version, what the
rules cut (`adjustments`) and the command's details. `If-Match: <version>` makes the command
conditional (409 with the current version when stale); `Idempotency-Key` makes a retry safe.

The roles that may send each command are read from the lifecycle (`states.lifecycle`), so the
API and the state machine cannot disagree. Order of checks: token (401) → role (403) → scope
(404, whether the dossier exists or not) → version (409) → the command's own rules (422/409)."""
# No `from __future__ import annotations` here: the endpoints are built in a loop and FastAPI
# must see their body types as objects, not as strings to resolve.
from dataclasses import dataclass
from typing import Annotated, Any, Callable

from fastapi import APIRouter, Body, Depends, Path, Request

from api.deps import BEARER_SECURITY, Bearer, bearer_with_roles, current_actor, etag, parse_if_match, scoped_dossier_id
from api.idempotency import execute
from api.problems import Problem, problem_responses
from api.routes_dossiers import command_body
from api.schemas import (
    ActionPlanIn,
    ClaimIn,
    CommandOut,
    DeclareEligibleIn,
    KindsIn,
    PayIn,
    ProposeIn,
    ReasonIn,
    RepaymentIn,
    ReviewDocumentIn,
    VoteIn,
    WithdrawIn,
    WriteOffIn,
)
from services import commands, loans
from services.commands import Actor
from states import lifecycle

router = APIRouter(tags=["commandes"])
DossierId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Identifiant du dossier")]
HEADERS = [
    {"name": "If-Match", "in": "header", "required": False,
     "description": "Version lue du dossier (ETag) : la commande échoue (409) s'il a changé depuis",
     "schema": {"type": "string", "maxLength": 40, "title": "If-Match"}},
    {"name": "Idempotency-Key", "in": "header", "required": False,
     "description": "Clé choisie par le client : une requête rejouée avec la même clé ne s'applique qu'une fois",
     "schema": {"type": "string", "maxLength": 200, "title": "Idempotency-Key"}},
]


def roles_of(*triggers: str) -> tuple[str, ...]:
    """The roles the lifecycle's machines let send these triggers, on any line shape."""
    out: list[str] = []
    for trigger in triggers:
        out += [r for r in lifecycle.roles_of(trigger) if r not in out and r != "system"]
    return tuple(out)


SHAPE_LABELS = {"diagnostic": "avec diagnostic (Occitanie, diagnostic Nouvelle-Aquitaine)",
                "instruction": "sans diagnostic (lignes Pays de la Loire)",
                "aid": "dossier d'aide ouvert depuis un plan de progrès (Nouvelle-Aquitaine)"}


def shapes_of(*triggers: str) -> tuple[str, ...]:
    """The line shapes whose lifecycle has these triggers (a dossier of another shape is refused,
    409 `not_allowed`)."""
    found = {shape for trigger in triggers for shape in lifecycle.shapes_of(trigger)}
    return tuple(shape for shape in lifecycle.SHAPES if shape in found)


@dataclass(frozen=True)
class CommandSpec:
    name: str
    summary: str
    body: Any  # a pydantic model, or None when the command takes no body
    roles: tuple[str, ...]
    run: Callable[..., commands.Outcome]
    optional_body: bool = False
    precheck: Callable[..., None] | None = None
    triggers: tuple[str, ...] = ()
    refusals: str = ""


def _consultant_kinds(actor, body) -> None:
    # A consultant hands in its own pieces only: a role matter (403), not a state matter.
    if actor.role == "consultant":
        wrong = [k for k in body.kinds if k not in commands.CONSULTANT_KINDS]
        if wrong:
            raise Problem(403, f"Un prestataire ne dépose pas : {', '.join(wrong)}.", rule="not_allowed", field="kinds")


def _b(body) -> dict:
    return body.model_dump(mode="json", exclude_none=True) if body is not None else {}


SPECS = (
    CommandSpec("submit_candidacy", "Déposer un brouillon de candidature", None, roles_of("submit_candidacy"),
                lambda b, **k: commands.submit_candidacy(**k)),
    CommandSpec("take_for_review", "Prendre le dossier en instruction", None, roles_of("take_for_review"),
                lambda b, **k: commands.take_for_review(**k)),
    CommandSpec("request_documents", "Demander des pièces (relances J+7, J+14, mise en demeure J+21, caducité J+30)",
                KindsIn, roles_of("request_documents"),
                lambda b, **k: commands.request_documents(kinds=_b(b)["kinds"], **k)),
    CommandSpec("provide_documents", "Déclarer des pièces remises (par type ; pour un fichier : POST …/documents)",
                KindsIn, roles_of("provide_documents"),
                lambda b, **k: commands.provide_documents(kinds=_b(b)["kinds"], **k), precheck=_consultant_kinds),
    CommandSpec("review_document", "Accepter ou refuser une pièce (motif obligatoire pour un refus)",
                ReviewDocumentIn, roles_of("review_document"),
                lambda b, **k: commands.review_document(document_id=b.document_id, decision=b.decision,
                                                        reason=b.reason, **k)),
    CommandSpec("declare_eligible", "Déclarer le dossier éligible : devis de phase 1 du prestataire, ou dépenses "
                "d'investissement et répartition subvention / prêt (coupées aux plafonds de la ligne)",
                DeclareEligibleIn, roles_of("declare_eligible"),
                lambda b, **k: commands.declare_eligible(consultant=b.consultant, phase1=_b(b).get("phase1"),
                                                        expenses=_b(b).get("expenses"),
                                                        instruments=_b(b).get("instruments"), **k),
                refusals="Un montant au-delà d'un plafond de la ligne est coupé, jamais refusé : ajustement "
                         "`loan_cap` (prêt) ou `subsidy_cap` (subvention) dans `adjustments`."),
    CommandSpec("declare_ineligible", "Déclarer le dossier irrecevable", ReasonIn, roles_of("declare_ineligible"),
                lambda b, **k: commands.declare_ineligible(reason=b.reason, **k)),
    CommandSpec("accept_diagnostic", "Accepter le rapport de diagnostic", None, roles_of("accept_diagnostic"),
                lambda b, **k: commands.accept_diagnostic(**k)),
    CommandSpec("submit_action_plan", "Déposer le plan d'action (devis de phase 2) ou le plan de progrès "
                "(actions numérotées, thème, budget)", ActionPlanIn, roles_of("submit_action_plan"),
                lambda b, **k: commands.submit_action_plan(phase2=_b(b).get("phase2"), actions=_b(b).get("actions"),
                                                           **k)),
    CommandSpec("propose_for_vote", "Proposer au vote d'une séance : les montants sont calculés et figés",
                ProposeIn, roles_of("propose_for_vote"),
                lambda b, **k: commands.propose_for_vote(session=b.session, **k),
                refusals="Un prêt est compté en de minimis à son équivalent-subvention brut au taux de référence "
                         "de la date d'octroi : une date qu'aucune période de taux de base ne couvre est refusée, "
                         "422 `reference_rate_unknown` (field `granted_on`)."),
    CommandSpec("record_vote", "Enregistrer le vote de la séance (favorable, défavorable, ajourné)", VoteIn,
                roles_of("vote_approved", "vote_rejected", "vote_adjourned"),
                lambda b, **k: commands.record_vote(session=b.session, outcome=b.outcome,
                                                    deliberation=b.deliberation, **k)),
    CommandSpec("claim_payment", "Demander un paiement : avance (montant) ou solde (lignes de facture)", ClaimIn,
                roles_of("claim_payment"),
                lambda b, **k: commands.claim_payment(phase=b.phase, kind=b.kind, amount=b.amount,
                                                      invoices=_b(b).get("invoices"), **k)),
    CommandSpec("pay", "Payer la demande en attente (la plus ancienne, ou celle indiquée)", PayIn, roles_of("pay"),
                lambda b, **k: commands.pay(claim_id=b.claim_id if b is not None else None, **k), optional_body=True),
    CommandSpec("withdraw", "Abandonner la candidature", WithdrawIn, roles_of("withdraw"),
                lambda b, **k: commands.withdraw(reason=b.reason, **k)),
    CommandSpec("disburse_loan", "Verser le prêt voté (une fois, jamais plus que voté) : l'échéancier part de ce jour",
                None, roles_of("disburse_loan"), lambda b, **k: loans.disburse_loan(**k),
                refusals="Sans prêt voté, ou déjà versé : 409 `not_allowed`."),
    CommandSpec("record_repayment", "Enregistrer un remboursement reçu (la plus ancienne échéance d'abord, intérêts "
                "avant capital)", RepaymentIn, roles_of("record_repayment"),
                lambda b, **k: loans.record_repayment(amount=b.amount, received_on=b.received_on.isoformat(), **k),
                refusals="Plus que ce qui est dû à la date de réception, sauf remboursement anticipé exact du "
                         "capital restant dû et des intérêts échus : 422 `overpayment` (field `amount`), rien n'est "
                         "enregistré."),
    CommandSpec("write_off", "Passer en perte un prêt en défaut de remboursement (motif obligatoire) : le dossier "
                "est clôturé", WriteOffIn, roles_of("write_off"),
                lambda b, **k: loans.write_off(reason=b.reason, **k)),
)
COMMANDS = {s.name: s for s in SPECS}


def _run(spec: CommandSpec, request: Request, dossier_id: int, bearer: Bearer, body) -> Any:
    expected = parse_if_match(request.headers.get("if-match"))
    uow_factory, clock = request.app.state.uow_factory, request.app.state.clock

    def work(uow):
        actor = bearer.actor  # checked by `execute` in this unit of work
        if spec.precheck is not None:
            spec.precheck(actor, body)
        did = scoped_dossier_id(dossier_id, actor, uow)
        outcome = spec.run(body, uow=uow, clock=clock, actor=actor, dossier_id=did, expected_version=expected)
        return 200, command_body(outcome), {"ETag": etag(outcome.version)}

    return execute(request, bearer=bearer, uow_factory=uow_factory, clock=clock,
                   payload={"command": spec.name, "body": _b(body)}, work=work, dossier_id=dossier_id)


def _endpoint(spec: CommandSpec):
    guard = bearer_with_roles(*spec.roles)
    # If-Match and Idempotency-Key are read by `_run` itself (`parse_if_match`, `execute`, which
    # check them); they are documented as header parameters (HEADERS below) rather than declared
    # as arguments: each declared parameter costs the dependency solver at every request.

    if spec.body is None:
        def endpoint(request: Request, dossier_id: DossierId, bearer=Depends(guard)):
            return _run(spec, request, dossier_id, bearer, None)
    elif spec.optional_body:
        def endpoint(request: Request, dossier_id: DossierId,
                     body: Annotated[spec.body | None, Body()] = None, bearer=Depends(guard)):
            return _run(spec, request, dossier_id, bearer, body)
    else:
        def endpoint(request: Request, dossier_id: DossierId, body: Annotated[spec.body, Body()],
                     bearer=Depends(guard)):
            return _run(spec, request, dossier_id, bearer, body)

    endpoint.__name__ = f"command_{spec.name}"
    shapes = shapes_of(*(spec.triggers or ((spec.name,) if spec.name != "record_vote" else ("vote_approved",))))
    endpoint.__doc__ = (f"{spec.summary}.\n\nRôles : {', '.join(spec.roles)}. Parcours : "
                        f"{' ; '.join(SHAPE_LABELS[s] for s in shapes)}. Réponse : nouvel état, version "
                        f"(aussi en ETag), ajustements des règles de montant, détails de la commande."
                        + (f"\n\n{spec.refusals}" if spec.refusals else ""))
    return endpoint


for _spec in SPECS:
    router.add_api_route(f"/dossiers/{{dossier_id}}/commands/{_spec.name}", _endpoint(_spec), methods=["POST"],
                         response_model=CommandOut, summary=_spec.summary,
                         responses=problem_responses(401, 403, 404, 409, 422), name=f"command_{_spec.name}",
                         openapi_extra={"parameters": HEADERS, "security": BEARER_SECURITY})


@router.post("/dossiers/{dossier_id}/commands/{command}", include_in_schema=False, name="command_unknown")
def unknown_command(dossier_id: str, command: str, actor: Annotated[Actor, Depends(current_actor)]):
    """After every command's own route: a name that is none of them. The same answer whether the
    dossier exists or not, and an auditor is refused (403) first, as on every write."""
    raise Problem(404, f"Commande inconnue : « {command[:64]} » (commandes : {', '.join(COMMANDS)}).",
                  rule="unknown_command", field="command")
