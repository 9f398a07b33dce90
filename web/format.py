"""French display of what the services return: money, instants, dates, labels of states, roles,
document kinds, rules and commands. Jinja2 filters and globals of the web templates."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from rules import french
from rules.calendar import PARIS
from rules.french import NBSP
from services.bulk import SYSTEM_ACTOR
from services.wording import (  # noqa: F401
    CLAIM_KIND_LABELS,
    KIND_LABELS,
    NOTIFICATION_KIND_LABELS,
    NOTIFICATION_STATUS_LABELS,  # (the labels' one place)
    OUTCOME_LABELS,
    REVIEW_LABELS,
    RULE_LABELS,
    fr_value,
    fr_value_pair,
)
from states.lifecycle import ROLE_LABELS, STATE_LABELS  # noqa: F401  (ROLE_LABELS: the filters below)
from states.lifecycle import TRIGGER_LABELS as LIFECYCLE_TRIGGER_LABELS

BASE_LABELS = {"expense": "dépense éligible", "aid": "aide"}

# The fields a refusal names, as the forms label them (a person never reads `received_on`).
FIELD_LABELS = {
    "actions": "actions du plan", "agenda_closes_on": "clôture de l'ordre du jour", "amount": "montant",
    "annual_rate": "taux annuel", "as": "rôle", "at": "date et heure", "cites": "dossier de diagnostic cité",
    "claim_id": "demande de paiement", "code": "code de la séance", "company": "entreprise",
    "activity": "activité", "employees": "effectif", "first_fy_months": "durée du premier exercice",
    "in_difficulty": "entreprise en difficulté", "region": "région", "siren": "SIREN",
    "tax_social_up_to_date": "régularité fiscale et sociale", "consultant": "prestataire",
    "consulting": "conseil", "de_minimis_prior": "aides de minimis antérieures", "decision": "décision",
    "deferral_months": "différé (mois)", "deliberation": "numéro de délibération", "display_name": "nom affiché",
    "do": "action", "document_id": "pièce", "documents": "pièces", "dossier": "dossier", "email": "courriel",
    "file": "fichier", "from": "date de début", "granted_on": "date d'octroi", "instalments": "échéances",
    "investment": "investissement", "expenses": "dépenses", "invoices": "factures", "kind": "type",
    "kinds": "types de pièces", "line": "ligne d'aide", "outcome": "décision du vote", "password": "mot de passe",
    "phase": "phase", "phase1": "phase 1", "phase2": "phase 2", "days": "jours", "day_rate": "taux journalier",
    "plan": "plan de progrès", "principal": "capital", "programme": "programme", "programme_id": "programme",
    "received_on": "date de réception", "regions": "régions", "reason": "motif", "role": "rôle",
    "schedule": "échéancier", "session": "séance", "session_date": "date de la séance", "siret": "SIRET",
    "username": "identifiant", "date": "date", "day_rates": "taux journalier",
    "note": "note", "officer": "chargé(e) de mission", "dossiers": "dossiers cochés",
    # the messagerie's forms (services.messages)
    "body": "message", "attachments": "pièces jointes", "thread": "échange", "expert_name": "nom de l'expert",
    "expert_email": "courriel de l'expert", "expert_kind": "qualité de l'expert", "opinion": "avis",
    "text": "motivation", "lien": "lien",
    # the teams page (services.assignment)
    "team_code": "code court", "team_name": "nom de l'équipe",
}


def field_label(name: str | None) -> str | None:
    """A refusal's field as people read it: `phase1.days` → « phase 1, jours », `kinds[0]` →
    « types de pièces »; None for a field the forms do not name."""
    if not name:
        return None
    import re

    parts = [p for p in re.split(r"[.\[\]]", name) if p and not p.isdigit()]
    labels = [FIELD_LABELS.get(p) for p in parts]
    if not labels or any(label is None for label in labels):
        known = [label for label in labels if label]
        return known[-1] if known else None
    return ", ".join(dict.fromkeys(labels))


_FIELD_PREFIX = None


def plain_message(message: str, field: str | None) -> str:
    """A service's message without its leading code name (`outcome : …` → `Décision du vote : …`)."""
    import re

    global _FIELD_PREFIX
    if _FIELD_PREFIX is None:
        _FIELD_PREFIX = re.compile(r"^([a-z_][a-z_0-9]*(?:\[\d+\]|\.[a-z_0-9]+)*) : ")
    found = _FIELD_PREFIX.match(message)
    if not found:
        return message
    label = field_label(found.group(1))
    rest = message[found.end():]
    return f"{label[0].upper()}{label[1:]} : {rest}" if label else rest[:1].upper() + rest[1:]


TRIGGER_LABELS = dict(LIFECYCLE_TRIGGER_LABELS)
TRIGGER_LABELS.update({"start_candidacy": "candidature commencée (brouillon)", "record_vote": "vote en séance",
                       "close": "clôture"})

CLAIM_STATUS_LABELS = {"pending": "en attente", "paid": "payée"}
SIZE_LABELS = {"sme": "PME", "eti": "ETI", None: "non déterminée"}
LEGAL_BASIS_LABELS = {"de_minimis": "de minimis", "SA.40453": "régime exempté SA.40453 (RGEC)"}


def _decimal(value) -> Decimal | None:
    # Lenient, as templates pass what the services return (Decimals, ints, decimal strings, the
    # odd float of a KPI average): through str() so that a float keeps the digits it prints.
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def number(value, decimals: int = 0) -> str:
    """1234567 → « 1 234 567 » (no-break spaces), decimals with a comma: ``rules.french.number``."""
    if value is None:
        return "—"
    d = _decimal(value)
    return str(value) if d is None or not d.is_finite() else french.number(d, decimals)


# The one display of an amount (« — » when none), shared with the letters, the PDF and the journal.
eur = french.shown_euros


def percent(value, decimals: int = 0) -> str:
    """A fraction as « 70 % » (``decimals`` decimals of a point): ``rules.french.percent``."""
    if value is None:
        return "—"
    d = _decimal(value)
    return str(value) if d is None or not d.is_finite() else french.percent(d, decimals)


def _as_datetime(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def instant(value) -> str:
    """An aware instant as Paris wall time « 15/06/2022 09:00 »."""
    dt = _as_datetime(value)
    if dt is None:
        return "—"
    return french.instant(dt)


def instant_iso(value) -> str:
    dt = _as_datetime(value)
    return "" if dt is None else dt.astimezone(PARIS).isoformat()


def local_input(value) -> str:
    """The value of an <input type="datetime-local"> in Paris time."""
    dt = _as_datetime(value)
    return "" if dt is None else dt.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


def day(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return french.day(value)


def state_label(state) -> str:
    return STATE_LABELS.get(state, state or "—")


LABELS = {
    "role": ROLE_LABELS, "kind": KIND_LABELS, "rule": RULE_LABELS, "base": BASE_LABELS, "trigger": TRIGGER_LABELS,
    "outcome": OUTCOME_LABELS, "claim_kind": CLAIM_KIND_LABELS, "claim_status": CLAIM_STATUS_LABELS,
    "review": REVIEW_LABELS, "notification_status": NOTIFICATION_STATUS_LABELS, "size": SIZE_LABELS,
    "legal_basis": LEGAL_BASIS_LABELS, "notification_kind": NOTIFICATION_KIND_LABELS,
}


def _labeller(mapping):
    return lambda key: mapping.get(key, key if key is not None else "—")


def example_programme(dossier) -> bool:
    """A dossier under an example programme (SPEC §11: « Programme d'exemple — chiffres non
    officiels » on every page of it)."""
    from programmes import default_catalogue

    programme_id = getattr(dossier, "programme_id", None)
    if not programme_id:
        return False
    return default_catalogue().get(programme_id, dossier.programme_version).is_example


def person(name, people=None) -> str:
    """Who acted, as people read it: the display name of an account (`people`, from
    `services.people.display_names`), else the name as recorded (a consultant's firm)."""
    if not name:
        return "—"
    if name == SYSTEM_ACTOR[0]:  # the scheduled work's own account: « Usine (automatique) »
        return ROLE_LABELS["system"]
    return (people or {}).get(name, name)


def says_role(name: str, role: str | None) -> bool:
    """Whether a display name already says the role: « Hugo Bernard, chargé de mission
    (Nouvelle-Aquitaine) » does (« chargé(e) » read as « chargé » or « chargée », « chef(fe) »
    as « chef » or « cheffe »), « Cabinet Midi Conseil » does not — the role is not repeated."""
    import re

    label = ROLE_LABELS.get(role or "", role or "")
    if not label or not name:
        return False
    pattern = re.escape(label.lower()).replace(r"\(e\)", "e?").replace(r"\(fe\)", "(?:fe)?")
    return re.search(pattern, name.lower()) is not None


def role_after(name: str | None, role: str | None, always: bool = False) -> str:
    """What follows a person's name in a history or a message header: nothing when the name
    already says the role (« M. Martin, chargé de mission »), else the role in brackets — after a
    dash when the name carries brackets already (« Mme Durand (Atelier Garonne SAS) — entreprise »).
    `always`: the role even when the name says it (the audit trail records the role acted in)."""
    if not always and says_role(name or "", role):
        return ""
    label = ROLE_LABELS.get(role or "", role or "")
    if label and name == label:  # « Usine (automatique) », not « Usine (automatique) (Usine (automatique)) »
        return ""
    if not label:
        return ""
    return f"— {label}" if "(" in (name or "") else f"({label})"


def count(n, singular: str, plural: str | None = None) -> str:
    """« 0 dossier », « 1 dossier », « 4 dossiers »: in French 0 and 1 take the singular."""
    n = n or 0
    word = singular if abs(n) < 2 else (plural or singular + "s")
    return f"{number(n)} {word}"


_RAW_AMOUNT = None


def amounts_in_text(text) -> str:
    """A rule's reason as people read it: every amount written the machine way (« 1300.00 € »,
    « 1250.00 » before « € » or « HT ») in French form (« 1 300,00 € »), rule ids left out."""
    import re

    global _RAW_AMOUNT
    if text is None:
        return ""
    if _RAW_AMOUNT is None:
        _RAW_AMOUNT = re.compile(r"(?<![\d,.])(-?\d+\.\d{2})(?=\s*(?:€|EUR\b))")
    return _RAW_AMOUNT.sub(lambda m: eur(m.group(1)).replace(f"{NBSP}€", ""), str(text))


def install(env) -> None:
    env.filters.update({
        "person": person, "says_role": says_role, "role_after": role_after, "count": count, "amounts_in_text": amounts_in_text,
        "eur": eur, "number": number, "percent": percent, "instant": instant, "instant_iso": instant_iso,
        "local_input": local_input, "day": day, "state_label": state_label, "siren": french.siren,
        # a replay's raw values (discrepancies, differences) in French form
        "reading": fr_value, "reading_pair": fr_value_pair, "example_programme": example_programme,
    })
    for name, mapping in LABELS.items():
        env.filters[f"{name}_label"] = _labeller(mapping)
    env.tests["nonzero_amount"] = french.is_nonzero_amount
