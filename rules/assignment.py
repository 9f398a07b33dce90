"""Work sharing (issue 19): who may give a dossier to which officer. Pure: the service reads the
dossier, the accounts and the teams, and asks these checks; each refusal is named by its rule.

- the head of service routes: any open dossier of its regions to any officer of the dossier's
  region;
- an officer takes an unassigned dossier for itself, or hands one of its own over to a colleague
  of the region, with a note saying what the colleague needs to know;
- a finished dossier (closed, rejected, withdrawn, lapsed) is no one's work any more."""
from __future__ import annotations

from dataclasses import dataclass

from rules.errors import InvalidInput, NotAllowed, RuleViolation

ASSIGNERS = ("officer", "head")
NOTE_MAX = 1000


@dataclass(frozen=True)
class Assignee:
    """The account a dossier would go to: its name, how people read it, its role and regions."""

    username: str
    display: str
    role: str
    regions: tuple[str, ...]
    active: bool = True


def assignment_kind(*, actor_role: str, actor_name: str, current: str | None, target: str) -> str:
    """How the change reads: the officer takes a dossier (`take`), hands its own over
    (`handover`), or the head routes it (`route`)."""
    if actor_role == "head":
        return "route"
    return "take" if target == actor_name else "handover"


def check_assignment(*, actor_role: str, actor_name: str, region: str, state_label: str, final: bool,
                     current: str | None, current_display: str | None, target: Assignee | None,
                     target_name: str, note: str | None) -> str:
    """The checks, in the order a person would ask them; returns the kind of assignment."""
    if actor_role not in ASSIGNERS:
        raise NotAllowed("Seuls les chargé(e)s de mission et les chef(fe)s de service affectent les dossiers.")
    if final:
        raise RuleViolation("assignment_dossier_finished",
                            f"Le dossier est terminé ({state_label}) : il n'est plus à affecter.", field="dossier")
    if target is None or not target.active or target.role != "officer" or region not in target.regions:
        who = target.display if target is not None else f"« {target_name} »"
        raise RuleViolation("assignee_not_officer",
                            f"{who} n'est pas chargé(e) de mission de la région {region} : "
                            f"le dossier ne peut pas lui être affecté.", field="officer")
    if current == target.username:
        raise RuleViolation("assignment_unchanged", f"Le dossier est déjà affecté à {target.display}.",
                            field="officer")
    kind = assignment_kind(actor_role=actor_role, actor_name=actor_name, current=current, target=target.username)
    if kind == "take" and current is not None:
        raise RuleViolation("assignment_taken",
                            f"Le dossier est déjà affecté à {current_display or current} : "
                            f"demandez-le-lui, ou au chef de service.", field="officer")
    if kind == "handover":
        if current != actor_name:
            whose = f"affecté à {current_display or current}" if current else "affecté à personne"
            raise RuleViolation("assignment_not_yours",
                                f"Ce dossier est {whose} : vous ne transmettez que vos propres dossiers.",
                                field="dossier")
        if not note:
            raise InvalidInput("note", "note : un mot pour le ou la collègue est obligatoire quand vous "
                               "transmettez un dossier.", rule="handover_note_missing")
    return kind
