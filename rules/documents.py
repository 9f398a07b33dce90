"""The review of a stage's pieces (pure): before a dossier is declared eligible, a programme may
require every candidacy piece examined and accepted (`Documents.reviewed_before_eligibility`)."""
from __future__ import annotations

from typing import Iterable, Mapping

from rules.errors import RuleViolation


def check_pieces_reviewed(latest: Mapping[str, str], kinds: Iterable[str], labels: Mapping[str, str]) -> None:
    """`latest`: each kind's latest version's review status (pending, accepted, refused).
    Raises `pieces_unreviewed` naming each piece still to examine or refused."""
    waiting = [k for k in kinds if latest.get(k) == "pending"]
    refused = [k for k in kinds if latest.get(k) == "refused"]
    if waiting or refused:
        said = []
        if waiting:
            said.append("à examiner : " + ", ".join(labels.get(k, k) for k in waiting))
        if refused:
            said.append("refusées : " + ", ".join(labels.get(k, k) for k in refused))
        raise RuleViolation("pieces_unreviewed",
                            "Les pièces de candidature doivent être examinées et acceptées avant la déclaration "
                            f"d'éligibilité ({' ; '.join(said)}).", field="documents", waiting=waiting, refused=refused)
