"""The lifecycle of a dossier (SPEC §3), declared once as data and run as one `transitions`
machine per programme line shape.

`TRANSITIONS` is the only place where a state change is allowed: each row names the trigger,
the source states, the destination (None = the command keeps the state), the roles that may
fire it, the guards it must pass and the line shapes it belongs to. Each shape's machine is built
from its rows (`MACHINES`); each of its transitions carries its row (`LifecycleTransition.spec`),
the role check and the guards are its conditions. Guards are *named*: the service layer provides,
for each name, a check that raises a `RuleViolation` carrying its rule id, so a refusal always
names the rule and changes nothing (the library evaluates conditions before it moves).

Everything else asks the machines, never the table: `fire` (the commands), `allowed_triggers`
(the pages' buttons, the API's `allowed_commands`), `roles_of` / `shapes_of` (the API's role
and shape tables), `destinations`, `edges` and `rows` (the state charts, `usine states`). The
audit replay fires too, with the recorded role and `GUARDS_PASSED`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, cast

from transitions import Machine, MachineError, Transition

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


Guard = Callable[[], None]


class LifecycleTransition(Transition):
    """A transition of a line's machine, carrying its row of `TRANSITIONS` (roles, guards, label):
    the role check when it fires, the role tables of the API, the pages' buttons and the charts
    all read this one object."""

    def __init__(self, source, dest, conditions=None, unless=None, before=None, after=None, prepare=None, *,
                 spec: TransitionSpec):
        super().__init__(source, dest, conditions, unless, before, after, prepare)
        self.spec = spec

    @property
    def trigger(self) -> str:
        return self.spec.trigger

    @property
    def roles(self) -> tuple[str, ...]:
        return self.spec.roles

    @property
    def guards(self) -> tuple[str, ...]:
        return self.spec.guards

    @property
    def label(self) -> str:
        return self.spec.label or self.spec.trigger


class LifecycleMachine(Machine):
    transition_cls = LifecycleTransition


class _Status:
    """The object `transitions` moves: it holds nothing but the state."""

    def __init__(self, state: str):
        self.state = state


def _role_condition(event) -> bool:
    role = event.kwargs["role"]
    spec = event.transition.spec
    if role not in spec.roles:
        raise NotAllowed(
            f"Le rôle « {ROLE_LABELS.get(role, role)} » ne peut pas faire « {TRIGGER_LABELS[spec.trigger]} » "
            f"(rôles autorisés : {_roles_named(spec.roles)}).",
            field="as",
        )
    return True


def _guard_condition(name: str):
    def condition(event) -> bool:
        guards: Mapping[str, Guard] = event.kwargs["guards"]
        guards[name]()  # raises a RuleViolation naming its rule, or returns
        return True

    condition.__name__ = f"check_{name}"
    return condition


def _build(shape: str) -> LifecycleMachine:
    rows = [{"trigger": spec.trigger, "source": list(spec.source), "dest": spec.dest, "spec": spec,
             "conditions": [_role_condition] + [_guard_condition(g) for g in spec.guards]}
            for spec in TRANSITIONS if shape in spec.shapes]
    return LifecycleMachine(model=None, states=list(STATES), transitions=rows, initial="draft",
                            auto_transitions=False, send_event=True, ignore_invalid_triggers=False)


# One machine per line shape, built once, without a model: `fire` hands the event a fresh status
# holder (Event.trigger takes the model as an argument), so no model is ever added or removed
# (~60 µs each) and the machines hold no per-dossier state: every thread may fire on them, and
# every question below is answered from them. The dossier itself is not the model: `fire` is
# given a state (by the commands, the sweeps and the checks that try a move before making it),
# and the dossier's status is written in one place only, `services.commands` (see
# tests/test_lifecycle_and_programmes.py), after the whole command has passed. Measured: ~9 µs a
# fire, as with the thread-local machine and status pair this replaced.
MACHINES: dict[str, LifecycleMachine] = {shape: _build(shape) for shape in SHAPES}
_ROW_ORDER = {id(spec): i for i, spec in enumerate(TRANSITIONS)}


def machine(shape: str) -> LifecycleMachine:
    """The machine of one line shape (`programmes.Line.shape`)."""
    return MACHINES[shape]


def _shapes(shape: str | None) -> tuple[str, ...]:
    if shape is None:
        return SHAPES
    return (shape,) if shape in MACHINES else ()


def edges(shape: str | None = None) -> list[LifecycleTransition]:
    """Every transition of one shape's machine (or of all of them, each (trigger, source, dest)
    once), in the order of the declaration: for charts, tables and the replay. `dest` None: the
    command keeps the state."""
    seen: dict[tuple, LifecycleTransition] = {}
    for s in _shapes(shape):
        for t in cast(list[LifecycleTransition], MACHINES[s].get_transitions()):
            seen.setdefault((t.trigger, t.source, t.dest), t)
    return sorted(seen.values(), key=lambda t: (_ROW_ORDER[id(t.spec)], t.spec.source.index(t.source)))


def rows(shape: str | None = None) -> list[TransitionSpec]:
    """The declared rows the machines carry (one shape's, or all), in their order: for the
    lifecycle's table (page, `usine states --format json`)."""
    return list({id(t.spec): t.spec for t in edges(shape)}.values())


def _from(trigger: str, state: str, shape: str) -> list[LifecycleTransition]:
    events = MACHINES[shape].events
    return cast(list[LifecycleTransition], list(events[trigger].transitions.get(state, ()))) if trigger in events else []


def allowed_triggers(state: str, role: str | None = None, shape: str | None = None) -> list[str]:
    """Triggers the machines have from `state` (for `role`, and on a line `shape`, when given) —
    for the pages' buttons and the API."""
    found = set()
    for s in _shapes(shape):
        for trigger in MACHINES[s].get_triggers(state):
            if role is None or any(role in t.roles for t in _from(trigger, state, s)):
                found.add(trigger)
    return [t for t in TRIGGERS if t in found]


def roles_of(trigger: str, shape: str | None = None) -> tuple[str, ...]:
    """The roles that may fire `trigger` from some state (on one line shape, or on any)."""
    out: list[str] = []
    for t in edges(shape):
        if t.trigger == trigger:
            out += [r for r in t.roles if r not in out]
    return tuple(out)


def shapes_of(trigger: str) -> tuple[str, ...]:
    """The line shapes whose machine has `trigger`."""
    return tuple(s for s in SHAPES if trigger in MACHINES[s].events)


def destinations(trigger: str, state: str, shape: str) -> tuple[str | None, ...]:
    """Where `trigger` from `state` leads on this line shape (None: the state stays), in the
    order the machine tries them; () when it does not exist from there."""
    return tuple(t.dest for t in _from(trigger, state, shape))


class _GuardsPassed(Mapping[str, Guard]):
    """Every named guard, taken as passed: for a move already made and recorded."""

    def __getitem__(self, name: str) -> Guard:
        return _passed

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


def _passed() -> None:
    return None


# The guards of a recorded move: the audit replay (services.audit.replay) fires the recorded
# trigger with the recorded role through the same machines as the commands, the guards' checks
# (reads of the tables the replay does not read) taken as passed — it re-checks their figures on
# its own, from the events.
GUARDS_PASSED: Mapping[str, Guard] = _GuardsPassed()


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
    events = MACHINES[shape].events
    if trigger not in events:
        raise NotAllowed(f"« {TRIGGER_LABELS[trigger]} » n'existe pas dans ce parcours (dossier sans cette étape).",
                         field="do")
    status = _Status(state)
    try:
        moved = events[trigger].trigger(status, role=role, guards={} if guards is None else guards)
    except MachineError:
        raise NotAllowed(
            f"« {TRIGGER_LABELS[trigger]} » n'est pas possible dans l'état « {STATE_LABELS.get(state, state)} ».",
            field="do",
        ) from None
    if not moved:  # pragma: no cover - conditions raise rather than return False
        raise NotAllowed(f"« {TRIGGER_LABELS[trigger]} » refusé.")
    return status.state


# Drawn from the machines' edges rather than by transitions' own GraphMachine(graph_engine=
# "mermaid"): that one opens with a YAML title block (not `stateDiagram-v2`), colours the
# model's current state as active (a chart of the lifecycle has none), has no [*] start and end,
# draws every command that keeps the state as a self-loop on each of its states, and graphs one
# machine where `usine states` shows the three shapes together.
def mermaid(shape: str | None = None) -> str:
    """The state chart in Mermaid syntax (`usine states --format mermaid`), of every shape or one."""
    lines = ["stateDiagram-v2", "    [*] --> draft"]
    for t in edges(shape):
        if t.dest is None:
            continue
        if t.trigger in ("withdraw", "lapse") and t.source != "draft":
            continue
        lines.append(f"    {t.source} --> {t.dest}: {t.trigger}")
    lines.append("    note right of draft: withdraw / lapse possible from every non-final state")
    for final in sorted(FINAL_STATES):
        lines.append(f"    {final} --> [*]")
    return "\n".join(lines)
