"""Named refusals. Every refusal carries the rule id of SCENARIOS.md so that the API, the CLI
and the scenario runner can say *which* rule refused, never just "error"."""
from __future__ import annotations


class RuleViolation(Exception):
    """A command refused by a rule. Nothing has been written when this is raised."""

    def __init__(self, rule: str, message: str, *, field: str | None = None, **details):
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.field = field
        self.details = details

    def as_dict(self) -> dict:
        out = {"rule": self.rule, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"{type(self).__name__}({self.rule!r}, {self.message!r}, field={self.field!r})"


class InvalidInput(RuleViolation):
    """Malformed input (a field of the wrong shape); rule id `invalid_input` unless a more
    precise one (e.g. `siren_checksum`) is given."""

    def __init__(self, field: str, message: str, *, rule: str = "invalid_input"):
        super().__init__(rule, message, field=field)


class NotAllowed(RuleViolation):
    """Wrong state or wrong role for this command."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__("not_allowed", message, field=field)


class UnknownFigure(RuleViolation):
    """The programme file marks a number this computation needs as unknown: Usine refuses
    rather than invent it."""

    def __init__(self, programme_id: str, field: str):
        super().__init__(
            "programme_figure_unknown",
            f"Le programme {programme_id} ne fixe pas « {field} » : le calcul est impossible.",
            field=field,
        )


class ConcurrencyConflict(Exception):
    """The dossier changed since the caller read it (optimistic concurrency)."""

    def __init__(self, dossier_id: int, expected: int, actual: int):
        if expected < 0 or actual < 0:
            message = "Le dossier a été modifié en même temps par quelqu'un d'autre : rechargez-le et recommencez."
        else:
            message = f"Le dossier {dossier_id} a changé (version attendue {expected}, actuelle {actual})."
        super().__init__(message)
        self.dossier_id = dossier_id
        self.expected = expected
        self.actual = actual


class NotFound(Exception):
    def __init__(self, what: str, key):
        super().__init__(f"{what} introuvable : {key}")
        self.what = what
        self.key = key
