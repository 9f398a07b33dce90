"""The lifecycle of a dossier (SPEC §3), declared once as data.

`TRANSITIONS` is the only place where a state change is allowed: each row names the trigger,
the source states, the destination (None = the command keeps the state), the roles that may
fire it and the guards it must pass. Guards are *named*: the service layer provides, for each
name, a check that raises a `RuleViolation` carrying its rule id, so a refusal always names the
rule and changes nothing (the `transitions` library evaluates conditions before it moves)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Mapping

from transitions import Machine, MachineError

from rules.errors import NotAllowed

STATES: tuple[str, ...] = (
    "draft", "submitted", "eligibility_review", "diagnostic", "action_plan", "instruction", "ready_for_vote",
    "approved", "in_payment", "in_repayment", "in_default", "closed", "rejected", "withdrawn", "lapsed",
)
FINAL_STATES = frozenset({"closed", "rejected", "withdrawn", "lapsed"})
OPEN_STATES = tuple(s for s in STATES if s not in FINAL_STATES)
# A disbursed loan is owed: the company can no longer withdraw, nor the dossier lapse.
LOAN_STATES = ("in_repayment", "in_default")
EXIT_STATES = tuple(s for s in OPEN_STATES if s not in LOAN_STATES)
WORKING_STATES = ("submitted", "eligibility_review", "diagnostic", "action_plan", "instruction", "ready_for_vote",
                  "approved", "in_payment", "in_repayment", "in_default")

# The shapes a programme line gives a dossier's life (programmes.Line.shape): with a diagnostic
# stage (Occitanie, the Nouvelle-Aquitaine diagnostic dossier), without one (every Pays de la Loire
# line), or an aid dossier opened from an approved progress plan (Nouvelle-Aquitaine).
SHAPES = ("diagnostic", "instruction", "aid")

STATE_LABELS = {
    "draft": "brouillon", "submitted": "candidature déposée",
    "eligibility_review": "instruction de recevabilité", "diagnostic": "diagnostic (phase 1)",
    "action_plan": "plan d'action (phase 2)", "instruction": "instruction du projet",
    "ready_for_vote": "proposé au vote",
    "approved": "voté / conventionné", "in_payment": "en paiement", "in_repayment": "en remboursement",
    "in_default": "défaut de remboursement", "closed": "clôturé",
    "rejected": "refusé / irrecevable", "withdrawn": "abandonné", "lapsed": "caduc / classé sans suite",
}

ROLES = ("applicant", "consultant", "officer", "head", "finance", "auditor", "admin", "system")
# The one French name of each role, for everything people read (pages, letters, refusals).
ROLE_LABELS = {
    "applicant": "entreprise", "consultant": "prestataire référencé", "officer": "chargé(e) de mission",
    "head": "chef(fe) de service", "finance": "service financier", "auditor": "auditeur",
    "admin": "administrateur", "system": "Usine (automatique)",
}


@dataclass(frozen=True)
class TransitionSpec:
    trigger: str
    source: tuple[str, ...]
    dest: str | None
    roles: tuple[str, ...]
    guards: tuple[str, ...] = ()
    label: str = ""
    shapes: tuple[str, ...] = SHAPES


T = TransitionSpec
WITH_DIAGNOSTIC = ("diagnostic",)
WITHOUT_DIAGNOSTIC = ("instruction",)
TRANSITIONS: tuple[TransitionSpec, ...] = (
    T("submit_candidacy", ("draft",), "submitted", ("applicant",), ("window_open",), "dépôt de la candidature",
      ("diagnostic", "instruction")),
    # An aid dossier is opened from the company's approved progress plan, straight into instruction.
    T("open_aid_dossier", ("draft",), "instruction", ("applicant",), ("plan_approved", "actions_available", "line_amounts"),
      "ouverture d'un dossier d'aide", ("aid",)),
    T("take_for_review", ("submitted",), "eligibility_review", ("officer",), (), "prise en instruction",
      ("diagnostic", "instruction")),
    T("request_documents", WORKING_STATES, None, ("officer",), (), "demande de pièces"),
    T("review_document", WORKING_STATES, None, ("officer",), (), "examen d'une pièce"),
    # An officer may file a piece received by post or by hand on the applicant's behalf.
    T("provide_documents", OPEN_STATES, None, ("applicant", "consultant", "officer"), ("uploader_may_provide",), "dépôt de pièces"),
    T("declare_eligible", ("eligibility_review",), "diagnostic", ("officer",),
      ("candidacy_documents_complete", "candidacy_documents_reviewed", "company_eligible", "line_amounts"), "déclaration d'éligibilité", WITH_DIAGNOSTIC),
    T("declare_eligible", ("eligibility_review",), "instruction", ("officer",),
      ("candidacy_documents_complete", "candidacy_documents_reviewed", "company_eligible", "line_amounts"), "déclaration d'éligibilité", WITHOUT_DIAGNOSTIC),
    T("declare_ineligible", ("submitted", "eligibility_review"), "rejected", ("officer",), (), "déclaration d'irrecevabilité",
      ("diagnostic", "instruction")),
    T("accept_diagnostic", ("diagnostic",), "action_plan", ("officer",), ("diagnostic_documents_complete",),
      "acceptation du diagnostic", WITH_DIAGNOSTIC),
    T("submit_action_plan", ("action_plan",), None, ("applicant",), ("plan_valid",), "dépôt du plan d'action", WITH_DIAGNOSTIC),
    T("propose_for_vote", ("action_plan",), "ready_for_vote", ("officer",),
      ("action_plan_submitted", "vote_documents_complete", "agenda_open", "amounts_within_caps"), "proposition au vote",
      WITH_DIAGNOSTIC),
    T("propose_for_vote", ("instruction",), "ready_for_vote", ("officer",),
      ("vote_documents_complete", "agenda_open", "amounts_within_caps"), "proposition au vote", ("instruction", "aid")),
    T("vote_approved", ("ready_for_vote",), "approved", ("head",), ("on_session_agenda", "session_held", "amounts_within_caps"), "vote favorable"),
    T("vote_rejected", ("ready_for_vote",), "rejected", ("head",), ("on_session_agenda", "session_held"), "vote défavorable"),
    T("vote_adjourned", ("ready_for_vote",), None, ("head",), ("on_session_agenda", "session_held"), "ajournement"),
    T("claim_payment", ("approved", "in_payment", "in_repayment"), None, ("applicant",),
      ("payment_deadline_open", "claim_valid"), "demande de paiement"),
    T("pay", ("approved",), "in_payment", ("finance",), ("claim_pending",), "paiement"),
    T("pay", ("in_payment", "in_repayment", "in_default"), None, ("finance",), ("claim_pending",), "paiement"),
    # SPEC §11.3: the voted principal, once; the dossier is then repaid on its schedule.
    T("disburse_loan", ("approved", "in_payment"), "in_repayment", ("finance",), ("loan_to_disburse",),
      "versement du prêt", WITHOUT_DIAGNOSTIC),
    T("record_repayment", ("in_repayment", "in_default"), None, ("finance",), ("repayment_valid",),
      "remboursement reçu", WITHOUT_DIAGNOSTIC),
    T("cure_default", ("in_default",), "in_repayment", ("finance",), (), "retour à jour des remboursements",
      WITHOUT_DIAGNOSTIC),
    T("remind_repayment", LOAN_STATES, None, ("system",), (), "relance de remboursement", WITHOUT_DIAGNOSTIC),
    T("declare_default", ("in_repayment",), "in_default", ("system",), (), "défaut de remboursement",
      WITHOUT_DIAGNOSTIC),
    T("write_off", ("in_default",), "closed", ("head",), (), "passage en perte", WITHOUT_DIAGNOSTIC),
    T("close", ("in_payment", "approved", "in_repayment"), "closed", ("finance", "system"), (), "clôture"),
    T("remind", OPEN_STATES, None, ("system",), (), "relance"),
    T("withdraw", EXIT_STATES, "withdrawn", ("applicant",), (), "abandon"),
    T("lapse", EXIT_STATES, "lapsed", ("system",), (), "caducité"),
    # RGPD (services.retention): past the programme's retention after closure, a closed dossier's
    # personal data are anonymised; its state does not change.
    T("anonymise", tuple(sorted(FINAL_STATES)), None, ("system",), (), "anonymisation (durée de conservation échue)"),
)

TRIGGERS = tuple(dict.fromkeys(t.trigger for t in TRANSITIONS))
# The French name of each command, from its row(s) above (the first label given wins).
TRIGGER_LABELS: dict[str, str] = {}
for _spec in TRANSITIONS:
    TRIGGER_LABELS.setdefault(_spec.trigger, _spec.label or _spec.trigger)


def _roles_named(roles) -> str:
    return ", ".join(ROLE_LABELS.get(r, r) for r in roles)


def transitions_of(shape: str) -> tuple[TransitionSpec, ...]:
    """The rows of one line shape's machine."""
    return tuple(t for t in TRANSITIONS if shape in t.shapes)

Guard = Callable[[], None]


class _Status:
    """The object `transitions` moves: it holds nothing but the state."""

    def __init__(self, state: str):
        self.state = state


def _role_condition(spec: TransitionSpec):
    def condition(event) -> bool:
        role = event.kwargs["role"]
        if role not in spec.roles:
            raise NotAllowed(
                f"Le rôle « {ROLE_LABELS.get(role, role)} » ne peut pas faire « {TRIGGER_LABELS[spec.trigger]} » "
                f"(rôles autorisés : {_roles_named(spec.roles)}).",
                field="as",
            )
        return True

    return condition


def _guard_condition(name: str):
    def condition(event) -> bool:
        guards: Mapping[str, Guard] = event.kwargs["guards"]
        guards[name]()  # raises a RuleViolation naming its rule, or returns
        return True

    condition.__name__ = f"check_{name}"
    return condition


def _machine_rows(shape: str) -> list[dict]:
    rows = []
    for spec in transitions_of(shape):
        rows.append({
            "trigger": spec.trigger,
            "source": list(spec.source),
            "dest": spec.dest,
            "conditions": [_role_condition(spec)] + [_guard_condition(g) for g in spec.guards],
        })
    return rows


_ROWS = {shape: _machine_rows(shape) for shape in SHAPES}
_SHAPE_TRIGGERS = {shape: frozenset(t.trigger for t in transitions_of(shape)) for shape in SHAPES}
# One machine per line shape and thread, holding one status object for good: firing sets that
# object's state and calls the trigger (~7 µs), where adding and removing a model per call cost
# ~60 µs and building a Machine ~0.4 ms. A thread-local machine needs no lock.
_local = threading.local()


def _machine(shape: str) -> tuple[Machine, "_Status"]:
    held = getattr(_local, "held", None)
    if held is None:
        held = _local.held = {}
    pair = held.get(shape)
    if pair is None:
        status = _Status("draft")
        machine = Machine(model=status, states=list(STATES), transitions=_ROWS[shape], initial="draft",
                          auto_transitions=False, send_event=True, ignore_invalid_triggers=False)
        pair = held[shape] = (machine, status)
    return pair


def fire(state: str, trigger: str, *, role: str, guards: Mapping[str, Guard] | None = None,
         shape: str = "diagnostic") -> str:
    """The state after `trigger` fired from `state` by `role` on a dossier of this line shape,
    or a refusal.

    Order of checks: the trigger must exist from this state (else `not_allowed`), the role must
    be allowed (`not_allowed`), then each guard in its declared order."""
    if trigger not in TRIGGERS:
        raise NotAllowed(f"Commande inconnue : « {trigger} ».", field="do")
    if state not in STATES:
        raise NotAllowed(f"État inconnu : « {state} ».")
    if shape not in SHAPES:
        raise NotAllowed(f"Forme de parcours inconnue : « {shape} ».")
    if trigger not in _SHAPE_TRIGGERS[shape]:
        raise NotAllowed(f"« {TRIGGER_LABELS[trigger]} » n'existe pas dans ce parcours (dossier sans cette étape).",
                         field="do")
    machine, status = _machine(shape)
    machine.set_state(state, model=status)
    try:
        moved = getattr(status, trigger)(role=role, guards=guards or {})
    except MachineError:
        raise NotAllowed(
            f"« {TRIGGER_LABELS[trigger]} » n'est pas possible dans l'état « {STATE_LABELS.get(state, state)} ».",
            field="do",
        ) from None
    if not moved:  # pragma: no cover - conditions raise rather than return False
        raise NotAllowed(f"« {TRIGGER_LABELS[trigger]} » refusé.")
    return status.state


def allowed_triggers(state: str, role: str | None = None, shape: str | None = None) -> list[str]:
    """Triggers that exist from `state` (and for `role`, and on a line `shape`, when given) —
    for UIs and the API."""
    out = []
    for spec in (TRANSITIONS if shape is None else transitions_of(shape)):
        if state in spec.source and (role is None or role in spec.roles) and spec.trigger not in out:
            out.append(spec.trigger)
    return out


def mermaid(shape: str | None = None) -> str:
    """The state chart in Mermaid syntax (`usine states --format mermaid`), of every shape or one."""
    lines = ["stateDiagram-v2", "    [*] --> draft"]
    seen = set()
    for spec in (TRANSITIONS if shape is None else transitions_of(shape)):
        for src in spec.source:
            dest = spec.dest
            if dest is None:
                continue
            if spec.trigger in ("withdraw", "lapse") and src != "draft":
                continue
            key = (src, dest, spec.trigger)
            if key in seen:
                continue
            seen.add(key)
            lines.append(f"    {src} --> {dest}: {spec.trigger}")
    lines.append("    note right of draft: withdraw / lapse possible from every non-final state")
    for final in sorted(FINAL_STATES):
        lines.append(f"    {final} --> [*]")
    return "\n".join(lines)
