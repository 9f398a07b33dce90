"""French wording of what people read: dates as 25/03/2021, instants as 25/03/2021 09:00 in
Europe/Paris time, euros as « 17 500,00 € », and the one French reading of each event, shared by
the CLI history, the web timeline, the API's event list, the auditor's PDF and the JSON export's
summaries. The JSON exports keep ISO 8601 for their values (machines read them)."""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

from notifications.rendering import DOCUMENT_LABELS
from rules import french
from rules.french import shown_euros

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")

OUTCOME_LABELS = {"approved": "favorable", "rejected": "défavorable", "adjourned": "ajourné"}
CLAIM_KIND_LABELS = {"advance": "avance", "final": "solde"}
SIZE_LABELS = {"sme": "PME", "eti": "ETI"}
REVIEW_LABELS = {"pending": "en attente d'examen", "accepted": "acceptée", "refused": "refusée"}
NOTIFICATION_STATUS_LABELS = {"queued": "en file d'envoi", "sent": "envoyé", "dead": "échec définitif"}
NOTIFICATION_KIND_LABELS = {
    "candidacy_received": "accusé de réception", "documents_requested": "demande de pièces",
    "documents_reminder": "relance", "documents_final_notice": "dernier rappel",
    "eligibility_decision": "décision d'éligibilité", "vote_result": "résultat du vote",
    "payment_issued": "paiement", "dossier_lapsed": "caducité", "dossier_closed": "clôture",
    "daily_digest": "récapitulatif quotidien", "window_opening": "ouverture d'AMI", "window_closing": "clôture d'AMI",
    "agenda_closing": "clôture d'ordre du jour",
    "loan_disbursed": "versement du prêt", "repayment_due": "avis d'échéance",
    "repayment_reminder": "relance de remboursement", "default_notice": "défaut de remboursement",
    "message_received": "avis de nouveau message", "expert_invitation": "demande d'avis d'expert",
}


def fr_day(value) -> str:
    """A calendar day (date, ISO "2021-03-25", or an instant, taken in Paris) → « 25/03/2021 »."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00")) if len(value) > 10 else date.fromisoformat(value)
    return french.day(value)


def fr_instant(value) -> str:
    """An aware instant (or ISO string with offset) → « 25/03/2021 09:00 », Paris wall time; the
    seconds are shown when there are any (a forged event may be a few seconds off)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return french.instant(value, seconds=None)


def fr_value(value):
    """A recorded value as a reader sees it: an ISO date or instant in French form, anything else
    unchanged (None stays None)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return fr_day(value)
    if isinstance(value, datetime):
        return fr_instant(value)
    if isinstance(value, str):
        try:
            if _ISO_DAY.match(value):
                return fr_day(value)
            if _ISO_INSTANT.match(value):
                return fr_instant(value)
        except ValueError:  # looks like a date, is not one (a forged value): shown as recorded
            return value
    return value


def fr_value_pair(value, other):
    """`fr_value(value)`, unless it reads like `fr_value(other)` while the raw values differ (two
    instants a fraction of a second apart): then the raw value, so that the difference shows."""
    text = fr_value(value)
    if value != other and text == fr_value(other):
        return value
    return text


KIND_LABELS = DOCUMENT_LABELS


def _kinds(kinds) -> str:
    return ", ".join(KIND_LABELS.get(k, k) for k in kinds or [])


def programme_label(key) -> str:
    """A programme as people read it: `occitanie-prif@v1` → « Parcours régional Industrie du
    Futur (version 1) »; an unknown key stays as recorded."""
    if not isinstance(key, str) or not key:
        return ""
    from programmes import default_catalogue

    pid, _, version = key.partition("@v")
    try:
        programme = default_catalogue().get(pid, int(version)) if version.isdigit() else default_catalogue().latest(pid)
    except Exception:  # noqa: BLE001 - a key of a programme this build no longer carries
        return key
    return f"« {programme.name} » (version {programme.version})"


def pieces(n: int) -> str:
    return f"{n} pièce" if n < 2 else f"{n} pièces"


def describe(e: dict, names: dict | None = None) -> str:
    """One event (`command`, `data`, as stored or exported) read in French. Never raises: an
    event whose data is not what its command writes (a tampered one) is named by its command.
    `names` gives the display name of an account the event names (`services.people`)."""
    try:
        return _describe(e, names or {})
    except (AttributeError, KeyError, TypeError, ValueError):
        return e.get("command", "?")


def _describe(e: dict, names: dict) -> str:
    d = e.get("data") or {}
    c = e["command"]
    if c == "start_candidacy":
        project = d.get("project")
        if project:  # the applicant portal's form (services/candidacy_drafts.py)
            return (f"Candidature commencée (brouillon) : projet « {project['title']} », dépenses "
                    f"{french.euros(project['expense'])} HT, aide demandée {french.euros(project['aid_requested'])}.")
        return "Candidature commencée (brouillon)."
    if c == "submit_candidacy":
        n = len(d.get("documents", []))
        return (f"Candidature déposée au programme {programme_label(d.get('programme', ''))}"
                + (f", avec {pieces(n)}." if n else "."))
    if c == "take_for_review":
        officer = d.get("officer")
        return f"Prise en instruction par {names.get(officer, officer)}." if officer else "Prise en instruction."
    if c == "request_documents":
        return f"Pièces demandées : {_kinds(d.get('kinds'))} — caducité le {fr_day(d.get('lapse_on'))} sans réponse."
    if c == "provide_documents":
        docs = ", ".join(f"{KIND_LABELS.get(x['kind'], x['kind'])} (v{x['version']})" for x in d.get("documents", []))
        extra = " Demande de pièces satisfaite." if d.get("fulfilled_requests") else ""
        return f"Pièces déposées : {docs}.{extra}"
    if c == "review_document":
        verdict = "acceptée" if d.get("decision") == "accepted" else "refusée"
        return f"Pièce {KIND_LABELS.get(d.get('kind'), d.get('kind'))} (v{d.get('version')}) {verdict}."
    if c == "declare_eligible":
        size = SIZE_LABELS.get(d.get("size_class"), d.get("size_class"))
        if d.get("request") is not None:  # an aid line of SPEC §11: amounts estimated, no quote
            total = ((d.get("estimate") or {}).get("total"))
            return f"Déclaré éligible ({size})" + (f" ; aide estimée {shown_euros(total)}." if total else ".")
        p = d.get("phase1") or {}
        return (f"Déclaré éligible ({size}) ; prestataire "
                f"{d.get('consultant')} ; phase 1 : {p.get('days')} j × {shown_euros(p.get('day_rate'))}.")
    if c == "open_aid_dossier":
        actions = ", ".join(f"n°{n}" for n in d.get("actions") or [])
        total = (d.get("estimate") or {}).get("total")
        return (f"Dossier d'aide ouvert depuis le plan du dossier {d.get('plan')} (actions {actions})"
                + (f" ; aide estimée {shown_euros(total)}." if total else "."))
    if c == "disburse_loan":
        loan = d.get("loan") or {}
        return (f"Prêt versé : {shown_euros(loan.get('principal'))} le {fr_day(loan.get('disbursed_on'))}, "
                f"{d.get('instalments')} échéances, première le {fr_day(d.get('first_due_on'))}.")
    if c == "record_repayment":
        text = (f"Remboursement reçu le {fr_day(d.get('received_on'))} : {shown_euros(d.get('amount'))} "
                f"(capital {shown_euros(d.get('principal'))}, intérêts {shown_euros(d.get('interest'))}) ; "
                f"capital restant dû {shown_euros(d.get('outstanding'))}")
        if d.get("early_repayment"):
            text += " — remboursement anticipé total"
        if d.get("default_cured"):
            text += " — retour à jour des remboursements"
        if d.get("closed"):
            text += " — dossier soldé et clôturé"
        return text + "."
    if c == "remind_repayment":
        what = NOTIFICATION_KIND_LABELS.get(d.get("kind"), d.get("kind"))
        return f"{what[:1].upper()}{what[1:]} : échéance n°{d.get('instalment')} du {fr_day(d.get('due_on'))}."
    if c == "declare_default":
        return (f"Défaut de remboursement : échéance n°{d.get('instalment')} du {fr_day(d.get('due_on'))} impayée "
                f"({shown_euros(d.get('unpaid'))}).")
    if c == "write_off":
        return f"Prêt passé en perte : {shown_euros(d.get('written_off'))} ; dossier clôturé."
    if c == "declare_ineligible":
        return "Déclaré irrecevable."
    if c == "accept_diagnostic":
        return "Diagnostic accepté : le dossier passe au plan d'action."
    if c == "submit_action_plan" and d.get("actions") is not None:  # a progress plan (Nouvelle-Aquitaine)
        actions = d["actions"]
        budget = sum((Decimal(str(a.get("budget") or "0")) for a in actions), Decimal("0"))
        return f"Plan de progrès déposé : {len(actions)} action(s), budget total {shown_euros(budget)}."
    if c == "submit_action_plan":
        p = d.get("phase2") or {}
        return f"Plan d'action déposé — phase 2 : {p.get('days')} j × {shown_euros(p.get('day_rate'))}."
    if c == "propose_for_vote":
        total = (d.get("proposal") or {}).get("total")
        when = f" du {fr_day(d['session_date'])}" if d.get("session_date") else ""
        return f"Proposé à la séance {d.get('session')}{when} — aide proposée {shown_euros(total)}."
    if c == "record_vote":
        outcome = OUTCOME_LABELS.get(d.get("outcome"), d.get("outcome"))
        total = (d.get("voted") or {}).get("total")
        text = f"Séance {d.get('session')} : vote {outcome}"
        if d.get("deliberation"):
            text += f" (délibération {d['deliberation']})"
        if total:
            text += f", aide votée {shown_euros(total)}"
        return text + "."
    if c == "claim_payment":
        if d.get("kind") == "advance":
            return f"Demande d'avance de la phase {d.get('phase')} : {shown_euros(d.get('amount'))}."
        assessment = d.get("assessment") or {}
        return (f"Demande de solde de la phase {d.get('phase')} : {len(d.get('invoices') or [])} ligne(s) de facture, "
                f"dépense éligible {shown_euros(assessment.get('eligible_expense'))}.")
    if c == "pay":
        kind = CLAIM_KIND_LABELS.get(d.get("kind"), d.get("kind"))
        text = f"Paiement ({kind}) de la phase {d.get('phase')} : {shown_euros(d.get('amount'))}"
        if d.get("recovery"):
            text += f" ; ordre de reversement de {shown_euros(d['recovery'])}"
        if d.get("closed"):
            text += " — dossier soldé et clôturé"
        return text + "."
    if c == "remind":
        return f"Relance automatique J+{d.get('after_days')}."
    if c == "lapse":
        return "Dossier caduc : les pièces demandées n'ont pas été remises à temps."
    if c == "withdraw":
        return "Abandon par l'entreprise."
    if c == "close":
        return f"Clôture ({d.get('cause')}) ; reliquat annulé {shown_euros(d.get('cancelled_remainder'))}."
    if c == "assign_officer":  # work sharing (services.assignment): the state never changes
        officer, previous = d["officer"], d.get("previous")
        who = names.get(officer, officer)
        before = f" (auparavant {names.get(previous, previous)})" if previous else ""
        note = f" — note : {d['note']}" if d.get("note") else ""
        end = "" if note[-1:] in (".", "!", "?", "…") else "."
        if d.get("kind") == "take":
            return f"Dossier pris en charge par {who}."
        if d.get("kind") == "handover":
            return f"Dossier transmis à {who}{before}{note}{end}"
        return f"Dossier affecté à {who}{before}{note}{end}"
    if c in ("send_message", "annotate", "invite_expert", "give_opinion"):
        # messages, annotations, expert opinions (services.messages): their sentences are in
        # services.history (which reads this module, hence imported here)
        from services.history import NOTE_SENTENCES

        return NOTE_SENTENCES[c](d, names)
    return c



# The rules' French names, as every page, letter and document names them (one list).
RULE_LABELS = {
    "window_closed": "fenêtre de l'AMI fermée", "size": "taille de l'entreprise", "first_fy": "premier exercice",
    "region": "région de l'établissement", "in_difficulty": "entreprise en difficulté",
    "tax_social": "régularité fiscale et sociale", "activity": "activité éligible",
    "documents_missing": "pièces manquantes", "day_minimum": "minimum de jours", "day_maximum": "maximum de jours",
    "day_rate_cap": "plafond du taux journalier", "pathway_cap": "plafond du parcours",
    "equity_cap": "plafond des fonds propres", "de_minimis": "plafond de minimis", "advance_cap": "plafond des avances",
    "expense_cutoff": "date limite des dépenses", "not_allowed": "action non permise",
    "payment_deadline": "délai de demande de paiement", "agenda_closed": "ordre du jour clos",
    "session_not_held": "séance pas encore tenue", "session_in_past": "séance à planifier à l'avance",
    "session_not_working_day": "séance un jour ouvré", "agenda_after_session": "clôture de l'ordre du jour avant la séance",
    "session_code_taken": "code de séance unique", "pieces_unreviewed": "pièces de candidature examinées",
    "overpayment": "remboursement supérieur au montant dû", "plan_not_approved": "plan de progrès non approuvé",
    "action_not_in_plan": "action absente du plan", "action_covered": "action déjà couverte",
    "reference_rate_unknown": "taux de référence inconnu", "unknown_line": "ligne d'aide inconnue",
    "loan_cap": "plafond du prêt", "subsidy_cap": "plafond de la subvention", "siren_checksum": "SIREN invalide",
    "unknown_programme": "programme inconnu", "username_taken": "identifiant déjà pris",
    "password_policy": "mot de passe refusé", "unknown_command": "commande inconnue",
    "invalid_input": "saisie invalide", "programme_figure_unknown": "chiffre du programme inconnu",
    "concurrency": "modification concurrente", "file_type": "type de fichier", "file_too_large": "taille du fichier",
    "text_forbidden_character": "caractère interdit", "office_package_invalid": "document bureautique invalide",
    "office_package_too_large": "archive trop volumineuse une fois décompressée",
    "office_package_macro": "macro ou exécutable dans le document",
    "consultant_need_to_know": "pièces utiles à la mission du prestataire", "siren_format": "SIREN à 9 chiffres",
    # work sharing (rules.assignment)
    "assignee_not_officer": "chargé(e) de mission de la région", "assignment_not_yours": "dossier d'un ou une autre",
    "assignment_taken": "dossier déjà affecté", "assignment_unchanged": "affectation inchangée",
    "assignment_dossier_finished": "dossier terminé", "handover_note_missing": "note de transmission",
    "team_taken": "équipe déjà existante",
}


# The title of a refusal (an API problem's `title`, RFC 9457) by rule id, and by HTTP status when
# the refusal names no rule. A title says what went wrong (« Plafond d'avance dépassé »); the rule's
# name above says which rule it is (« plafond des avances »): two readings, side by side here, and
# tests/test_wording.py checks that every rule id the code raises has its title.
STATUS_TITLES = {
    400: "Requête invalide", 401: "Authentification requise", 403: "Action non autorisée",
    404: "Ressource introuvable", 405: "Méthode non autorisée", 406: "Format de réponse non disponible",
    409: "Conflit", 413: "Contenu trop volumineux", 415: "Type de contenu refusé",
    422: "Demande refusée", 429: "Trop de requêtes", 500: "Erreur interne", 503: "Service indisponible",
}
RULE_TITLES = {
    "invalid_input": "Données invalides", "not_allowed": "Action non permise", "conflict": "Version périmée",
    "not_found": "Ressource introuvable", "unauthenticated": "Authentification requise",
    "forbidden_role": "Rôle non autorisé", "read_only_role": "Rôle en lecture seule",
    "invalid_grant": "Identifiants refusés", "file_too_large": "Fichier trop volumineux",
    "body_too_large": "Contenu trop volumineux",
    "file_type": "Type de fichier refusé", "idempotency_key_reused": "Clé d'idempotence déjà utilisée",
    "idempotency_answer_lost": "Réponse non conservée", "outcome_unknown": "Issue inconnue",
    "siren_checksum": "SIREN invalide", "window_closed": "Aucun appel ouvert",
    "before_first_event": "Le dossier n'existait pas encore",
    "documents_missing": "Pièces manquantes", "size": "Taille d'entreprise non éligible",
    "first_fy": "Premier exercice trop court", "region": "Région non éligible",
    "in_difficulty": "Entreprise en difficulté", "tax_social": "Obligations fiscales et sociales",
    "activity": "Activité non éligible", "day_minimum": "Durée minimale non atteinte",
    "day_maximum": "Durée maximale dépassée", "advance_cap": "Plafond d'avance dépassé",
    "expense_cutoff": "Dépense hors délai", "payment_deadline": "Délai de paiement expiré",
    "de_minimis": "Plafond de minimis atteint", "agenda_closed": "Ordre du jour clos",
    "session_not_held": "Séance pas encore tenue", "session_in_past": "Séance à planifier à l'avance",
    "session_not_working_day": "Séance un jour non ouvré", "agenda_after_session": "Ordre du jour clos après la séance",
    "session_code_taken": "Code de séance déjà pris", "pieces_unreviewed": "Pièces de candidature à examiner",
    "unknown_command": "Commande inconnue", "unknown_programme": "Programme inconnu",
    "username_taken": "Identifiant déjà pris", "password_policy": "Mot de passe refusé",
    "text_forbidden_character": "Caractère interdit", "office_package_invalid": "Document bureautique invalide",
    "office_package_too_large": "Archive trop volumineuse une fois décompressée",
    "office_package_macro": "Document bureautique avec macros ou exécutable",
    "overpayment": "Remboursement supérieur au montant dû", "plan_not_approved": "Plan de progrès non approuvé",
    "action_not_in_plan": "Action absente du plan", "action_covered": "Action déjà couverte",
    "reference_rate_unknown": "Taux de référence inconnu", "unknown_line": "Ligne d'aide inconnue",
    "loan_cap": "Plafond du prêt", "subsidy_cap": "Plafond de la subvention",
    "signin_locked": "Connexion bloquée pour l'instant", "signin_rate_limited": "Trop de tentatives de connexion",
    "signin_busy": "Trop de connexions en cours",
    # work sharing (rules.assignment, services.assignment)
    "assignee_not_officer": "Affectation à un agent non chargé de mission de la région",
    "assignment_dossier_finished": "Dossier terminé", "assignment_not_yours": "Dossier d'un ou une autre",
    "assignment_taken": "Dossier déjà affecté", "assignment_unchanged": "Affectation inchangée",
    "handover_note_missing": "Note de transmission manquante", "team_taken": "Équipe déjà existante",
    # experts' links (services.messages), letters, previews, retention
    "link_invalid": "Lien non valide", "link_used": "Lien déjà utilisé", "link_expired": "Lien expiré",
    "convention_not_required": "Convention non requise", "preview_unavailable": "Aperçu indisponible",
    "retention_history_not_verified": "Historique non vérifié",
    # identity provider accounts (services.oidc), identifiers, programmes, loans, listings, health
    "oidc_agents_only": "Connexion réservée aux agents", "oidc_account_linked": "Compte déjà rattaché",
    "oidc_email_taken": "Adresse déjà enregistrée", "siret_checksum": "SIRET invalide",
    "programme_figure_unknown": "Chiffre du programme inconnu", "programme_changed": "Version de programme modifiée",
    "repayment_order": "Remboursements hors ordre", "bad_cursor": "Curseur de pagination invalide",
    "database_unavailable": "Base de données indisponible", "not_ready": "Service pas encore prêt",
}
