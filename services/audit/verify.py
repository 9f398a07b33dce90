"""Integrity of a dossier's history (SPEC §8): the hash chain is unbroken and replaying the
events' states through the lifecycle gives the stored state and amounts."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select

from db import models as m
from services.events import GENESIS, hash_of
from states.lifecycle import STATES


@dataclass
class Verification:
    dossier_id: int
    reference: str
    ok: bool = True
    problems: list[dict] = field(default_factory=list)

    def fail(self, kind: str, seq: int | None, detail: str) -> None:
        self.ok = False
        self.problems.append({"problem": kind, "seq": seq, "detail": detail})


def verify_events(dossier: m.Dossier, events: list[m.Event]) -> Verification:
    result = Verification(dossier.id, dossier.reference)
    prev_hash = GENESIS
    state = "draft"
    paid = Decimal("0.00")
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            kind = "removed" if event.seq > expected_seq else "reordered"
            result.fail(kind, event.seq, f"séquence {expected_seq} attendue, {event.seq} trouvée")
            expected_seq = event.seq
        if event.prev_hash != prev_hash:
            result.fail("chain_broken", event.seq, "le lien avec l'événement précédent est rompu")
        if hash_of(event) != event.hash:
            result.fail("edited", event.seq, "le contenu de l'événement ne correspond plus à son empreinte")
        if event.state_before != state:
            result.fail("state_mismatch", event.seq, f"état avant « {event.state_before} », attendu « {state} »")
        if event.state_after not in STATES:
            result.fail("state_unknown", event.seq, f"état inconnu « {event.state_after} »")
        state = event.state_after
        if event.command == "pay":
            paid += Decimal(event.data.get("amount") or "0") - Decimal(event.data.get("recovery") or "0")
        prev_hash = event.hash
    if state != dossier.status:
        result.fail("state_differs", None, f"l'historique donne « {state} », la base « {dossier.status} »")
    if paid != dossier.paid_total - dossier.recovered_total:
        result.fail("paid_differs", None, f"l'historique donne {paid} € payés, la base {dossier.paid_total - dossier.recovered_total} €")
    return result


def verify_dossier(session, dossier_id: int) -> Verification:
    dossier = session.get(m.Dossier, dossier_id)
    events = list(session.scalars(select(m.Event).where(m.Event.dossier_id == dossier_id).order_by(m.Event.seq, m.Event.id)))
    return verify_events(dossier, events)
