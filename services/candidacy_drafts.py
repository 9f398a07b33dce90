"""The applicant portal's candidacy form (docs/portal.md): a company starts a candidacy under an
open call of a programme, fills the form in steps — each step checked on the server (the same
checks answer the form's live check as the company types) and kept as a draft once it passes —,
then uploads the pieces and submits.

The form is a shell over the lifecycle's own use cases, never a copy of them:

- the steps « entreprise », « projet », « de minimis » are kept in `candidacy_drafts` (per
  account, resumable after sign-out); a refused step writes nothing and says, per field, which
  rule refused (`StepRefused`);
- the last form step passing creates the draft dossier with `services.commands.start_candidacy`
  (company facts, the de minimis attestation's aids, the project) in the same unit of work as the
  step itself;
- each piece is `services.commands.upload_document` (same checks and limits as every upload);
- « Déposer » is `services.commands.submit_candidacy` on the draft dossier, after this module's
  check that every piece the programme asks is there: one unit of work, nothing half-written."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from db import models as m
from db.models_portal import CandidacyDraft
from programmes import Programme, regulations
from rules.calendar import paris_date
from rules.de_minimis import PriorAid, headroom
from rules.eligibility import ACTIVITIES, CompanyFacts, check_eligibility, size_class
from rules.errors import InvalidInput, NotAllowed, NotFound, RuleViolation
from rules.french import euros
from rules.identifiers import InvalidIdentifier, validate_siren
from rules.money import parse_french_amount
from rules.text import check_text
from services import commands
from services.clock import Clock
from services.commands import Actor
from services.commands import candidacy as candidacy_commands
from services.commands import documents as document_commands
from services.uow import UnitOfWork

FORM_STEPS = ("entreprise", "projet", "de_minimis")
STEP_TITLES = {"entreprise": "L'entreprise", "projet": "Le projet et les montants",
               "de_minimis": "Attestation de minimis", "pieces": "Les pièces", "depot": "Vérification et dépôt"}
ALL_STEPS = (*FORM_STEPS, "pieces", "depot")

# The form's fields as the company reads them (messages name the field by this label).
LABELS = {
    "siren": "SIREN", "name": "Raison sociale", "email": "Adresse électronique de contact",
    "region": "Région de l'établissement", "employees": "Effectif (salariés)",
    "turnover": "Chiffre d'affaires annuel (€)", "balance_sheet": "Total du bilan (€)",
    "equity": "Fonds propres (€)", "first_fy_months": "Durée du premier exercice clos (mois)",
    "activity": "Activité", "in_difficulty": "Entreprise en difficulté",
    "tax_social_up_to_date": "À jour de ses obligations fiscales et sociales",
    "line": "Ligne d'aide", "title": "Intitulé du projet", "description": "Description du projet",
    "expense": "Montant des dépenses du projet (€ HT)", "aid_requested": "Aide demandée (€)",
    "attestation": "Attestation sur l'honneur",
    **{f"aid_{i}_date": f"Aide n°{i} — date d'octroi" for i in (1, 2, 3)},
    **{f"aid_{i}_amount": f"Aide n°{i} — montant (€)" for i in (1, 2, 3)},
}
ACTIVITY_LABELS = {
    "industrial": "Industrie (production manufacturière)", "ess_ei_ea": "ESS — entreprise d'insertion ou adaptée",
    "ess_production_50": "ESS — production à plus de 50 %", "craft_production": "Artisanat de production",
    "other": "Autre activité",
}
SIZE_LABELS = {"sme": "PME", "eti": "ETI", None: "grande entreprise (GE)"}
REGIONS = ("Auvergne-Rhône-Alpes", "Bourgogne-Franche-Comté", "Bretagne", "Centre-Val de Loire", "Corse",
           "Grand Est", "Hauts-de-France", "Île-de-France", "Normandie", "Nouvelle-Aquitaine", "Occitanie",
           "Pays de la Loire", "Provence-Alpes-Côte d'Azur", "Guadeloupe", "Guyane", "La Réunion", "Martinique",
           "Mayotte")
STEP_FIELDS = {
    "entreprise": ("siren", "name", "email", "region", "employees", "turnover", "balance_sheet", "equity",
                   "first_fy_months", "activity", "in_difficulty", "tax_social_up_to_date"),
    "projet": ("line", "title", "description", "expense", "aid_requested"),
    "de_minimis": ("aid_1_date", "aid_1_amount", "aid_2_date", "aid_2_amount", "aid_3_date", "aid_3_amount",
                   "attestation"),
}


@dataclass(frozen=True)
class FieldError:
    rule: str
    message: str


class StepRefused(Exception):
    """A step of the form refused: each field with the rule that refused it. Nothing written."""

    def __init__(self, errors: dict[str, FieldError]):
        super().__init__("; ".join(f"{k}: {e.message}" for k, e in errors.items()))
        self.errors = errors


# -- the checks of one field (the live check and the step's) ---------------------------------------

def _text_value(values: dict, name: str) -> str:
    raw = values.get(name)
    return raw.strip() if isinstance(raw, str) else ""


def _whole(values: dict, name: str, errors: dict) -> int | None:
    raw = _text_value(values, name).replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
    if not raw:
        errors[name] = FieldError("invalid_input", f"{LABELS[name]} : obligatoire.")
        return None
    if not raw.isdigit() or len(raw) > 9:
        errors[name] = FieldError("invalid_input", f"{LABELS[name]} : un nombre entier positif est attendu "
                                                   f"(reçu « {values.get(name)} »).")
        return None
    return int(raw)


def _amount(values: dict, name: str, errors: dict, *, required: bool = True) -> Decimal | None:
    raw = _text_value(values, name)
    if not raw:
        if required:
            errors[name] = FieldError("invalid_input", f"{LABELS[name]} : obligatoire.")
        return None
    try:
        return parse_french_amount(raw, LABELS[name], allow_zero=not required)
    except RuleViolation as exc:
        errors[name] = FieldError(exc.rule, exc.message)
        return None


def _plain_text(values: dict, name: str, errors: dict, *, limit: int, multiline: bool = False) -> str | None:
    raw = _text_value(values, name)
    if not raw:
        errors[name] = FieldError("invalid_input", f"{LABELS[name]} : obligatoire.")
        return None
    if len(raw) > limit:
        errors[name] = FieldError("invalid_input", f"{LABELS[name]} : {limit} caractères au plus.")
        return None
    try:
        check_text(raw, LABELS[name], multiline=multiline)
    except RuleViolation as exc:
        errors[name] = FieldError(exc.rule, exc.message)
        return None
    return raw


def check_siren(raw: str, actor: Actor) -> FieldError | None:
    """The SIREN as typed: nine digits (spaces allowed), the Luhn key (python-stdnum), and the
    company of the account."""
    try:
        siren = validate_siren(raw or "")
    except InvalidIdentifier as exc:
        return FieldError(exc.rule, f"SIREN : {exc.message}.")
    if actor.siren is not None and siren != actor.siren:
        return FieldError("not_allowed", f"SIREN : {siren} n'est pas le SIREN de votre entreprise (compte rattaché "
                                         f"au SIREN {actor.siren}) ; une entreprise ne dépose que pour elle-même.")
    return None


def live_check(programme: Programme, actor: Actor, name: str, raw: str) -> tuple[FieldError | None, str | None]:
    """One field of the form as the company types it: (its refusal or None, a hint or None).
    The same checks as the step's, so the page never says « bon » to what the server refuses."""
    if name == "siren":
        return check_siren(raw, actor), None
    errors: dict[str, FieldError] = {}
    values = {name: raw}
    if name in ("turnover", "balance_sheet", "equity", "expense", "aid_requested", "aid_1_amount", "aid_2_amount",
                "aid_3_amount"):
        amount = _amount(values, name, errors, required=name not in ("turnover", "balance_sheet") and
                         not name.startswith("aid_"))
        return errors.get(name), None if amount is None else f"Lu : {euros(amount)}"
    if name == "employees":
        count = _whole(values, name, errors)
        if count is None:
            return errors.get(name), None
        s = programme.size
        cls = "sme" if count <= s.sme_max_employees else "eti" if count <= s.eti_max_employees else None
        return None, f"Catégorie d'après l'effectif : {SIZE_LABELS[cls]}"
    if name == "region":
        region = raw.strip()
        if region and region not in programme.eligibility.regions:
            return FieldError("region", f"{LABELS['region']} : le programme « {programme.name} » exige un "
                                        f"établissement en {' ou '.join(programme.eligibility.regions)}."), None
    return None, None


# -- the steps -----------------------------------------------------------------------------------

def _check_company(programme: Programme, actor: Actor, values: dict) -> dict:
    errors: dict[str, FieldError] = {}
    siren_error = check_siren(_text_value(values, "siren"), actor)
    if siren_error:
        errors["siren"] = siren_error
    name = _plain_text(values, "name", errors, limit=200)
    email = _text_value(values, "email")
    if email and ("@" not in email or len(email) > 254 or " " in email):
        errors["email"] = FieldError("invalid_input", f"{LABELS['email']} : adresse électronique invalide.")
    region = _text_value(values, "region")
    if not region:
        errors["region"] = FieldError("invalid_input", f"{LABELS['region']} : obligatoire.")
    employees = _whole(values, "employees", errors)
    first_fy = _whole(values, "first_fy_months", errors)
    turnover = _amount(values, "turnover", errors, required=False)
    balance = _amount(values, "balance_sheet", errors, required=False)
    equity = _amount(values, "equity", errors)
    activity = _text_value(values, "activity")
    if activity not in ACTIVITIES:
        errors["activity"] = FieldError("invalid_input", f"{LABELS['activity']} : choisir l'une des activités proposées.")
    flags = {}
    for key in ("in_difficulty", "tax_social_up_to_date"):
        answer = _text_value(values, key)
        if answer not in ("oui", "non"):
            errors[key] = FieldError("invalid_input", f"{LABELS[key]} : répondre oui ou non.")
        flags[key] = answer == "oui"
    if errors:
        raise StepRefused(errors)
    company = {"siren": validate_siren(_text_value(values, "siren")), "name": name, "employees": employees,
               "equity": str(equity), "region": region, "first_fy_months": first_fy,
               "in_difficulty": flags["in_difficulty"], "tax_social_up_to_date": flags["tax_social_up_to_date"],
               "activity": activity, "turnover": None if turnover is None else str(turnover),
               "balance_sheet": None if balance is None else str(balance), "email": email or None}
    facts = CompanyFacts.parse(company)
    try:
        check_eligibility(programme, facts)  # region, size class (PME/ETI/GE), activity, first year…
    except RuleViolation as exc:
        fieldname = (exc.field or "").removeprefix("company.")
        if fieldname not in LABELS:  # not a field of the form (a figure the programme file lacks)
            raise StepRefused({"step": FieldError(exc.rule, exc.message)}) from None
        raise StepRefused({fieldname: FieldError(exc.rule, f"{LABELS[fieldname]} : {exc.message}")}) from None
    return {"company": {k: v for k, v in company.items() if v is not None},
            "size_class": size_class(programme, facts)}


def candidacy_lines(programme: Programme):
    return [line for line in programme.dossier_lines if line.shape != "aid"]


def _check_project(programme: Programme, values: dict) -> dict:
    errors: dict[str, FieldError] = {}
    lines = candidacy_lines(programme)
    raw_line = _text_value(values, "line") or (str(lines[0].number) if len(lines) == 1 else "")
    line = next((ln for ln in lines if str(ln.number) == raw_line), None)
    if line is None:
        errors["line"] = FieldError("invalid_input", f"{LABELS['line']} : choisir l'une des lignes du programme.")
    title = _plain_text(values, "title", errors, limit=200)
    description = _plain_text(values, "description", errors, limit=2000, multiline=True)
    expense = _amount(values, "expense", errors)
    aid = _amount(values, "aid_requested", errors)
    if expense is not None and aid is not None and aid > expense:
        errors["aid_requested"] = FieldError("invalid_input", f"{LABELS['aid_requested']} : {euros(aid)} dépasse le "
                                                              f"montant des dépenses du projet ({euros(expense)}).")
    if errors:
        raise StepRefused(errors)
    assert line is not None and expense is not None and aid is not None
    return {"line": line.number, "title": title, "description": description, "expense": str(expense),
            "aid_requested": str(aid)}


def _date_fr(raw: str, name: str, errors: dict) -> date | None:
    text = raw.strip()
    try:
        if "/" in text:
            day_, month, year = (int(p) for p in text.split("/"))
            return date(year, month, day_)
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = FieldError("invalid_input", f"{LABELS[name]} : date JJ/MM/AAAA attendue (reçu « {text} »).")
        return None


def _check_de_minimis(values: dict, today: date) -> dict:
    errors: dict[str, FieldError] = {}
    aids = []
    for i in (1, 2, 3):
        raw_date, raw_amount = _text_value(values, f"aid_{i}_date"), _text_value(values, f"aid_{i}_amount")
        if not raw_date and not raw_amount:
            continue
        if not raw_date:
            errors[f"aid_{i}_date"] = FieldError("invalid_input", f"{LABELS[f'aid_{i}_date']} : obligatoire avec un montant.")
        granted = _date_fr(raw_date, f"aid_{i}_date", errors) if raw_date else None
        if granted is not None and granted > today:
            errors[f"aid_{i}_date"] = FieldError("invalid_input", f"{LABELS[f'aid_{i}_date']} : une aide déjà reçue "
                                                                  "ne peut pas être datée dans le futur.")
        amount = _amount(values, f"aid_{i}_amount", errors)
        if granted is not None and amount is not None and f"aid_{i}_date" not in errors:
            aids.append({"granted_on": granted.isoformat(), "amount": str(amount)})
    if _text_value(values, "attestation") != "oui":
        errors["attestation"] = FieldError("de_minimis", f"{LABELS['attestation']} : cochez la case pour attester "
                                                         "l'exactitude des aides de minimis déclarées (règle de minimis).")
    if errors:
        raise StepRefused(errors)
    return {"aids": aids, "attested": True}


def de_minimis_room(aids: list[dict], today: date) -> dict:
    """What the attestation leaves of the ceiling on this day (the aid is cut to it at the vote)."""
    room = headroom(regulations(), granted_on=today,
                    prior=[PriorAid(date.fromisoformat(a["granted_on"]), Decimal(a["amount"])) for a in aids])
    return {"regulation": room.regulation, "ceiling": room.ceiling, "counted": room.counted,
            "remaining": room.remaining, "period_start": room.period_start}


# -- the draft ------------------------------------------------------------------------------------

def open_calls(uow: UnitOfWork, today: date) -> list[tuple[Programme, object]]:
    """Each programme (latest version) with a call open on this Paris day, and that call. A file
    marked `incomplete` (a figure its eligibility or money rules need is "unknown") is not offered:
    its candidacies could never be declared eligible (`programme_figure_unknown`)."""
    out = []
    for programme_id in uow.catalogue.ids():
        programme = uow.catalogue.latest(programme_id)
        if programme.status == "incomplete":
            continue
        window = programme.call_on(today)
        if window is not None and candidacy_lines(programme):
            out.append((programme, window))
    return out


def drafts_of(uow: UnitOfWork, actor: Actor) -> list[CandidacyDraft]:
    """The account's drafts not yet submitted, newest first."""
    return list(uow.session.scalars(select(CandidacyDraft).where(
        CandidacyDraft.username == actor.name, CandidacyDraft.submitted_at.is_(None))
        .order_by(CandidacyDraft.updated_at.desc(), CandidacyDraft.id.desc())))


def get_draft(uow: UnitOfWork, actor: Actor, draft_id: int) -> CandidacyDraft:
    """The account's own draft (another account's answers as if it did not exist)."""
    draft = uow.session.get(CandidacyDraft, draft_id) if 0 < draft_id < 2**31 else None
    if draft is None or draft.username != actor.name:
        raise NotFound("brouillon", draft_id)
    return draft


def _applicant(actor: Actor) -> None:
    if actor.role != "applicant" or not actor.siren:
        raise NotAllowed(f"Le rôle « {actor.role} » ne dépose pas de candidature.", field="as")


def start_draft(*, uow: UnitOfWork, clock: Clock, actor: Actor, programme_id: str) -> int:
    """A new draft under the call of the programme open today (`window_closed` otherwise); the
    account's unsubmitted draft of the same programme is resumed rather than doubled."""
    _applicant(actor)
    now = clock.now()
    today = paris_date(now)
    try:
        programme = uow.catalogue.latest(programme_id)
    except Exception:
        raise InvalidInput("programme", "programme : programme inconnu.", rule="unknown_programme") from None
    candidacy_commands._window_open(programme, today)()  # the lifecycle's own guard of submit_candidacy
    call = programme.call_on(today)
    existing = next((d for d in drafts_of(uow, actor) if d.programme_id == programme.id), None)
    if existing is not None:
        return existing.id
    draft = CandidacyDraft(username=actor.name, siren=actor.siren, programme_id=programme.id,
                           call_code=call.code if call else None, steps={}, created_at=now, updated_at=now)
    uow.session.add(draft)
    uow.session.flush()
    draft_id = draft.id
    uow.commit()
    return draft_id


def programme_of(uow: UnitOfWork, draft: CandidacyDraft) -> Programme:
    return uow.catalogue.latest(draft.programme_id)


def next_step(draft: CandidacyDraft) -> str:
    """Where the company resumes: the first form step not yet passed, then the pieces."""
    for step in FORM_STEPS:
        if step not in (draft.steps or {}):
            return step
    return "pieces"


def save_step(*, uow: UnitOfWork, clock: Clock, actor: Actor, draft_id: int, step: str, values: dict) -> dict:
    """Check one step of the form and keep it (`StepRefused`: nothing written). The last form
    step creates the draft dossier with `commands.start_candidacy` in the same unit of work.
    Returns {"next": the next step, "dossier_id": the draft dossier once made}."""
    _applicant(actor)
    draft = get_draft(uow, actor, draft_id)
    if draft.submitted_at is not None or draft.dossier_id is not None:
        raise NotAllowed("Ces informations sont déjà enregistrées dans le dossier en brouillon : elles ne se "
                         "modifient plus (abandonnez le brouillon pour en recommencer un).", field="step")
    if step not in FORM_STEPS:
        raise InvalidInput("step", f"step : étape inconnue « {step} ».")
    if FORM_STEPS.index(step) > FORM_STEPS.index(next_step(draft)):
        raise NotAllowed(f"Complétez d'abord l'étape « {STEP_TITLES[next_step(draft)]} ».", field="step")
    programme = programme_of(uow, draft)
    now = clock.now()
    if step == "entreprise":
        checked = _check_company(programme, actor, values)
    elif step == "projet":
        checked = _check_project(programme, values)
    else:
        checked = _check_de_minimis(values, paris_date(now))
    typed = {k: _text_value(values, k) for k in STEP_FIELDS[step]}
    draft.steps = {**(draft.steps or {}), step: {"typed": typed, "checked": checked}}
    draft.updated_at = now
    if all(s in draft.steps for s in FORM_STEPS):
        project = draft.steps["projet"]["checked"]
        # One transaction: the command's commit is held until the draft is linked to its dossier.
        uow.hold_commit()
        outcome = commands.start_candidacy(
            uow=uow, clock=clock, actor=actor, programme_id=programme.id,
            company=draft.steps["entreprise"]["checked"]["company"],
            de_minimis_prior=draft.steps["de_minimis"]["checked"]["aids"], documents=[],
            line=project["line"], project={k: project[k] for k in ("title", "description", "expense", "aid_requested")})
        draft.dossier_id = outcome.dossier_id
        uow.commit_held()
        return {"next": "pieces", "dossier_id": outcome.dossier_id}
    uow.commit()
    return {"next": next_step(draft), "dossier_id": None}


def missing_pieces(uow: UnitOfWork, dossier: m.Dossier) -> list[str]:
    """The candidacy pieces the programme asks that are not there (or whose latest version was refused)."""
    programme = uow.catalogue.get(dossier.programme_id, dossier.programme_version)
    latest = dict(uow.session.execute(
        select(m.Document.kind, m.Document.review_status).where(m.Document.dossier_id == dossier.id)
        .order_by(m.Document.kind, m.Document.version)).all())
    return [k for k in programme.documents.candidacy if k not in latest or latest[k] == "refused"]


def submit_draft(*, uow: UnitOfWork, clock: Clock, actor: Actor, draft_id: int) -> commands.Outcome:
    """« Déposer » : every piece there (`documents_missing` otherwise, the lifecycle's guard of
    the eligibility decision, asked earlier here), then `commands.submit_candidacy` on the draft
    dossier — the draft marked submitted in the same transaction."""
    _applicant(actor)
    draft = get_draft(uow, actor, draft_id)
    if draft.dossier_id is None:
        raise NotAllowed(f"Complétez d'abord l'étape « {STEP_TITLES[next_step(draft)]} ».", field="step")
    if draft.submitted_at is not None:
        raise NotAllowed("Cette candidature est déjà déposée.", field="step")
    dossier = uow.dossier(draft.dossier_id)
    programme = uow.catalogue.get(dossier.programme_id, dossier.programme_version)
    document_commands._documents_complete(uow.session, dossier, programme.documents.candidacy, "la candidature")()
    draft.submitted_at = clock.now()
    draft.updated_at = draft.submitted_at
    uow.hold_commit()  # the draft marked submitted commits with the command, or neither does
    outcome = commands.submit_candidacy(uow=uow, clock=clock, actor=actor, dossier_id=dossier.id,
                                        expected_version=dossier.version)
    uow.commit_held()
    return outcome


def draft_of_dossier(uow: UnitOfWork, dossier_id: int) -> CandidacyDraft | None:
    return uow.session.scalar(select(CandidacyDraft).where(CandidacyDraft.dossier_id == dossier_id))
