"""Open data: the aids voted, in the national SCDL « subventions » schema, version 2.1.1
(SPEC §10; décret 2017-779: published within three months of the attributive act).

One row per voted dossier (approved, in payment or closed), in the schema's column order. What
each column holds, and where Usine has no figure, is said next to the column below and in
docs/opendata.md. Nothing is invented: the attributing body's SIRET comes from the programme
file (`attributing_siret`) or from whoever exports; when neither gives it, the export is refused
(`programme_figure_unknown`, field `attributing_siret`) — the column is mandatory."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import bindparam, select

from db import models as m
from rules.calendar import paris_date
from rules.errors import InvalidInput, RuleViolation
from rules.identifiers import InvalidIdentifier, validate_siret
from services.csv_export import write_csv

SCHEMA = "scdl/subventions"
SCHEMA_VERSION = "2.1.1"
COLUMNS = (
    "nomAttribuant", "idAttribuant", "dateConvention", "referenceDecision", "nomBeneficiaire",
    "idBeneficiaire", "rnaBeneficiaire", "objet", "montant", "nature", "conditionsVersement",
    "datesPeriodeVersement", "idRAE", "notificationUE", "pourcentageSubvention", "dispositifAide",
)
REQUIRED = ("nomAttribuant", "idAttribuant", "dateConvention", "nomBeneficiaire", "objet", "montant", "nature",
            "conditionsVersement", "datesPeriodeVersement", "notificationUE", "pourcentageSubvention")
# Voted, whatever happened to a loan voted with it since (SPEC §11.3: a dossier with a loan is in
# repayment, or in default, while its subsidy is paid on its own claim).
VOTED_STATES = ("approved", "in_payment", "in_repayment", "in_default", "closed")
OBJECT_MAX = 256

_DAY = r"\d{4}-\d{2}-\d{2}"
_PERIOD = re.compile(rf"^{_DAY}(_{_DAY})?$")
_AMOUNT = re.compile(r"^\d+\.\d{2}$")
_SIRET = re.compile(r"^\d{14}$")

_VOTED = (select(m.Dossier)
          .where(m.Dossier.programme_id == bindparam("programme_id"), m.Dossier.status.in_(VOTED_STATES),
                 m.Dossier.voted_on.is_not(None))
          .order_by(m.Dossier.voted_on, m.Dossier.id))
_PAYMENT_DAYS = (select(m.Payment.dossier_id, m.Payment.paid_at)
                 .where(m.Payment.dossier_id.in_(bindparam("ids", expanding=True))))


@dataclass(frozen=True)
class Export:
    programme_id: str
    rows: list[dict]

    def csv(self) -> str:
        """UTF-8 CSV, comma-separated, one header line: what the schema's validators read. A
        free-text cell a spreadsheet would read as a formula (a company named `=HYPERLINK(…)`)
        is written as text, prefixed with `'` (services.csv_export)."""
        return write_csv(COLUMNS, self.rows)


def _two_places(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _attributor_siret(programme, given: str | None) -> str:
    """The SIRET given by whoever exports, else the programme file's; checked (Luhn)."""
    raw = given if given is not None else programme.attributing_siret
    if raw is None:
        raise RuleViolation(
            "programme_figure_unknown",
            f"Le programme {programme.id} ne donne pas le SIRET de la collectivité qui attribue (attributing_siret) : "
            f"indiquez-le (--attributor-siret, ou attributor_siret dans l'API) ; l'export ne l'invente pas.",
            field="attributing_siret")
    try:
        return validate_siret(raw)
    except InvalidIdentifier as exc:
        raise InvalidInput("attributor_siret", f"attributor_siret : {exc}", rule=exc.rule) from None


def voted_subsidy(dossier: m.Dossier) -> Decimal:
    """The subsidy a dossier was voted: on a line with instruments, its subsidy only — a loan
    (zero-rate or subsidised) is lent and repaid, not a « subvention », and is not published
    here (it is reported on the programme dashboard and in the programme's archive)."""
    voted = dossier.voted or {}
    if voted.get("by_instrument"):
        return Decimal(voted.get("subsidy_total", "0"))
    return Decimal(voted.get("total", dossier.aid_total or 0))


def subsidy_row(*, dossier: m.Dossier, programme, attributor_siret: str, payment_days: list[date]) -> dict:
    """The SCDL row of one voted dossier (its subsidy; never its loan)."""
    voted = dossier.voted or {}
    lines = voted.get("lines", [])
    total = voted_subsidy(dossier)
    expense = sum((Decimal(line["eligible_expense"]) for line in lines), Decimal("0"))
    # The share of the subsidised spending the aid covers; the schema wants 0.01 to 1.
    share = _two_places(total / expense) if expense > 0 else Decimal("1.00")
    share = min(max(share, Decimal("0.01")), Decimal("1.00"))
    # Paid in one go only when one payment is foreseen: one phase, no advance allowed.
    staged = len(lines) > 1 or any(Decimal(p.advance_max_rate or 0) > 0 for p in programme.phases
                                   if any(line["phase"] == p.number for line in lines))
    start = min(payment_days) if payment_days else dossier.voted_on
    if dossier.status == "closed" and payment_days:
        end = max(payment_days)
    else:
        end = dossier.payment_deadline_on or (max(payment_days) if payment_days else dossier.voted_on)
    period = start.isoformat() if end is None or end <= start else f"{start.isoformat()}_{end.isoformat()}"
    line = programme.line(dossier.line)
    what = "diagnostic et plan d'action" if line.shape == "diagnostic" and len(programme.dossier_lines) == 1 \
        else line.name
    objet = f"Accompagnement Industrie du Futur : {what} (dossier {dossier.reference})"[:OBJECT_MAX]
    return {
        "nomAttribuant": f"Région {programme.region}",
        "idAttribuant": attributor_siret,
        # The attributive act is the council's vote; Usine records no later convention signature.
        "dateConvention": dossier.voted_on.isoformat(),
        "referenceDecision": dossier.deliberation or "",
        "nomBeneficiaire": dossier.company_facts["name"],
        # The candidacy records the company's SIREN, not the SIRET of an establishment.
        "idBeneficiaire": "",
        "rnaBeneficiaire": "",
        "objet": objet,
        "montant": str(_two_places(total)),
        "nature": "aide en numéraire",
        "conditionsVersement": "échelonné" if staged else "unique",
        "datesPeriodeVersement": period,
        "idRAE": "",
        # De minimis (Reg. 1407/2013, 2023/2831) and GBER-exempted aid (SA.40453) are not notified.
        "notificationUE": "non",
        "pourcentageSubvention": str(share),
        "dispositifAide": programme.name,
    }


def check_row(row: dict, index: int = 0) -> None:
    """The schema's constraints on one row, named by column (a row Usine writes must pass)."""
    where = f"rows[{index}]"
    if tuple(row) != COLUMNS:
        raise InvalidInput(where, f"{where} : colonnes attendues {', '.join(COLUMNS)}.")
    for column in REQUIRED:
        if not row[column]:
            raise InvalidInput(f"{where}.{column}", f"{where}.{column} : valeur obligatoire.")
    if not _SIRET.match(row["idAttribuant"]):
        raise InvalidInput(f"{where}.idAttribuant", f"{where}.idAttribuant : un SIRET de 14 chiffres.")
    if row["idBeneficiaire"] and not _SIRET.match(row["idBeneficiaire"]):
        raise InvalidInput(f"{where}.idBeneficiaire", f"{where}.idBeneficiaire : un SIRET de 14 chiffres.")
    date.fromisoformat(row["dateConvention"])
    if not _PERIOD.match(row["datesPeriodeVersement"]):
        raise InvalidInput(f"{where}.datesPeriodeVersement", f"{where}.datesPeriodeVersement : AAAA-MM-JJ ou AAAA-MM-JJ_AAAA-MM-JJ.")
    if len(row["objet"]) > OBJECT_MAX:
        raise InvalidInput(f"{where}.objet", f"{where}.objet : {OBJECT_MAX} caractères au plus.")
    if not _AMOUNT.match(row["montant"]) or Decimal(row["montant"]) <= 0:
        raise InvalidInput(f"{where}.montant", f"{where}.montant : un montant positif, deux décimales.")
    if row["conditionsVersement"] not in ("unique", "échelonné", "autre"):
        raise InvalidInput(f"{where}.conditionsVersement", f"{where}.conditionsVersement : unique, échelonné ou autre.")
    if row["notificationUE"] not in ("oui", "non"):
        raise InvalidInput(f"{where}.notificationUE", f"{where}.notificationUE : oui ou non.")
    if not Decimal("0.01") <= Decimal(row["pourcentageSubvention"]) <= Decimal("1"):
        raise InvalidInput(f"{where}.pourcentageSubvention", f"{where}.pourcentageSubvention : entre 0.01 et 1.")


def export_subsidies(*, uow, programme_id: str, attributor_siret: str | None = None,
                     voted_from: date | None = None, voted_to: date | None = None) -> Export:
    """The voted aids of a programme (every version of it), voted between the two days given
    (inclusive), as SCDL rows checked against the schema's constraints."""
    if programme_id not in uow.catalogue.ids():
        raise InvalidInput("programme", f"programme : programme inconnu « {programme_id} ».", rule="unknown_programme")
    if voted_from and voted_to and voted_from > voted_to:
        raise InvalidInput("from", "from : la date de début suit la date de fin.")
    siret = _attributor_siret(uow.catalogue.latest(programme_id), attributor_siret)
    dossiers = [d for d in uow.session.scalars(_VOTED, {"programme_id": programme_id})
                if (voted_from is None or d.voted_on >= voted_from) and (voted_to is None or d.voted_on <= voted_to)
                and voted_subsidy(d) > 0]
    days: dict[int, list[date]] = {}
    if dossiers:
        for dossier_id, paid_at in uow.session.execute(_PAYMENT_DAYS, {"ids": [d.id for d in dossiers]}):
            days.setdefault(dossier_id, []).append(paris_date(paid_at))
    rows = [subsidy_row(dossier=d, programme=uow.catalogue.get(d.programme_id, d.programme_version),
                        attributor_siret=siret, payment_days=days.get(d.id, [])) for d in dossiers]
    for i, row in enumerate(rows):
        check_row(row, i)
    return Export(programme_id, rows)

