"""Eligibility of a company for a programme (SPEC §2, §10): each failing criterion is a
`RuleViolation` with its rule id. Pure: reads the programme's numbers, nothing else."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from rules.errors import InvalidInput, RuleViolation
from rules.identifiers import validate_siren
from rules.money import parse_amount
from rules.text import check_text

if TYPE_CHECKING:  # the programme's types only: programmes imports rules, not the reverse
    from programmes import Programme

ACTIVITIES = ("industrial", "ess_ei_ea", "ess_production_50", "craft_production", "other")


@dataclass(frozen=True)
class CompanyFacts:
    """What the applicant declares in its candidacy (the officer checks it)."""

    siren: str
    name: str
    employees: int
    equity: Decimal
    region: str
    first_fy_months: int
    in_difficulty: bool
    tax_social_up_to_date: bool
    activity: str
    turnover: Decimal | None = None
    balance_sheet: Decimal | None = None
    email: str | None = None
    linked_sirens: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw, field: str = "company") -> "CompanyFacts":
        if not isinstance(raw, dict):
            raise InvalidInput(field, f"{field} : un objet est attendu.")
        required = ("siren", "name", "employees", "equity", "region", "first_fy_months",
                    "in_difficulty", "tax_social_up_to_date", "activity")
        for key in required:
            if key not in raw:
                raise InvalidInput(f"{field}.{key}", f"{field}.{key} est obligatoire.")
        unknown = set(raw) - set(required) - {"turnover", "balance_sheet", "email", "linked_sirens"}
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidInput(f"{field}.{name}", f"{field}.{name} : champ inconnu.")
        try:
            siren = validate_siren(raw["siren"])
        except ValueError as exc:
            raise InvalidInput(f"{field}.siren", getattr(exc, "message", str(exc)),
                               rule=getattr(exc, "rule", "invalid_input")) from None
        name = raw["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidInput(f"{field}.name", f"{field}.name : raison sociale de 1 à 200 caractères.")
        check_text(name, f"{field}.name")
        for key in ("employees", "first_fy_months"):
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidInput(f"{field}.{key}", f"{field}.{key} : entier positif attendu (reçu « {v} »).")
        for key in ("in_difficulty", "tax_social_up_to_date"):
            if not isinstance(raw[key], bool):
                raise InvalidInput(f"{field}.{key}", f"{field}.{key} : vrai ou faux attendu.")
        if raw["activity"] not in ACTIVITIES:
            raise InvalidInput(f"{field}.activity",
                               f"{field}.activity : « {raw['activity']} » n'est pas l'une de {', '.join(ACTIVITIES)}.")
        if not isinstance(raw["region"], str) or not raw["region"].strip():
            raise InvalidInput(f"{field}.region", f"{field}.region : région attendue.")
        check_text(raw["region"], f"{field}.region")
        linked = raw.get("linked_sirens") or []
        if not isinstance(linked, list):
            raise InvalidInput(f"{field}.linked_sirens", f"{field}.linked_sirens : liste de SIREN attendue.")
        linked_ok = []
        for i, s in enumerate(linked):
            try:
                linked_ok.append(validate_siren(s))
            except ValueError as exc:
                raise InvalidInput(f"{field}.linked_sirens[{i}]", getattr(exc, "message", str(exc)),
                                   rule=getattr(exc, "rule", "invalid_input")) from None
        email = raw.get("email")
        if email is not None and (not isinstance(email, str) or "@" not in email or len(email) > 254):
            raise InvalidInput(f"{field}.email", f"{field}.email : adresse électronique invalide.")
        if email is not None:
            check_text(email, f"{field}.email")
        return cls(
            siren=siren, name=name.strip(), employees=raw["employees"],
            equity=parse_amount(raw["equity"], f"{field}.equity"),
            region=raw["region"].strip(), first_fy_months=raw["first_fy_months"],
            in_difficulty=raw["in_difficulty"], tax_social_up_to_date=raw["tax_social_up_to_date"],
            activity=raw["activity"],
            turnover=None if raw.get("turnover") is None else parse_amount(raw["turnover"], f"{field}.turnover"),
            balance_sheet=None if raw.get("balance_sheet") is None else parse_amount(raw["balance_sheet"], f"{field}.balance_sheet"),
            email=email, linked_sirens=tuple(linked_ok),
        )

    def as_dict(self) -> dict:
        return {
            "siren": self.siren, "name": self.name, "employees": self.employees,
            "equity": str(self.equity), "region": self.region, "first_fy_months": self.first_fy_months,
            "in_difficulty": self.in_difficulty, "tax_social_up_to_date": self.tax_social_up_to_date,
            "activity": self.activity,
            "turnover": None if self.turnover is None else str(self.turnover),
            "balance_sheet": None if self.balance_sheet is None else str(self.balance_sheet),
            "email": self.email, "linked_sirens": list(self.linked_sirens),
        }


def _within(value: Decimal | None, limit: Decimal | None) -> bool:
    return value is not None and limit is not None and value <= limit


def size_class(programme: Programme, company: CompanyFacts) -> str | None:
    """'sme', 'eti', or None (too large). Headcount first (the seed's test); the financial
    thresholds apply only when the company gave its turnover or balance sheet."""
    s = programme.size
    financials_known = company.turnover is not None or company.balance_sheet is not None
    if company.employees <= s.sme_max_employees:
        if not financials_known or _within(company.turnover, s.sme_max_turnover) or _within(company.balance_sheet, s.sme_max_balance_sheet):
            return "sme"
    if company.employees <= s.eti_max_employees:
        if not financials_known or _within(company.turnover, s.eti_max_turnover) or _within(company.balance_sheet, s.eti_max_balance_sheet):
            return "eti"
    return None


def check_eligibility(programme: Programme, company: CompanyFacts) -> str:
    """Every criterion of the programme, in the order an officer reads a file; returns the
    size class. The first failing criterion refuses, and the message lists the others."""
    failures: list[RuleViolation] = []
    e = programme.eligibility
    if company.activity not in e.activities:
        failures.append(RuleViolation("activity", f"Activité « {company.activity} » non éligible au programme "
                                      f"(éligibles : {', '.join(e.activities)}).", field="company.activity"))
    cls = size_class(programme, company)
    if cls is None or cls not in programme.size.eligible_classes:
        failures.append(RuleViolation("size", f"Effectif de {company.employees} salariés : au-delà de "
                                      f"{programme.size.eti_max_employees} salariés (ETI), l'entreprise n'est pas éligible.",
                                      field="company.employees"))
    min_months = programme.require(e.min_first_fy_months, "eligibility.min_first_fy_months")
    if company.first_fy_months < min_months:
        failures.append(RuleViolation("first_fy", f"Premier exercice de {company.first_fy_months} mois : "
                                      f"au moins {min_months} mois sont exigés.", field="company.first_fy_months"))
    if company.region not in e.regions:
        failures.append(RuleViolation("region", f"Établissement situé en {company.region} : le programme exige "
                                      f"{' ou '.join(e.regions)}.", field="company.region"))
    if company.in_difficulty and not e.in_difficulty_allowed:
        failures.append(RuleViolation("in_difficulty", "Entreprise en difficulté au sens du RGEC art. 2(18) : non éligible.",
                                      field="company.in_difficulty"))
    if e.tax_social_required and not company.tax_social_up_to_date:
        failures.append(RuleViolation("tax_social", "L'entreprise n'est pas à jour de ses obligations fiscales et sociales.",
                                      field="company.tax_social_up_to_date"))
    if failures:
        first = failures[0]
        if len(failures) > 1:
            others = " ; ".join(f"{f.rule} : {f.message}" for f in failures[1:])
            first = RuleViolation(first.rule, f"{first.message} (autres motifs : {others})", field=first.field)
        raise first
    assert cls is not None  # no size class is a failure, raised above
    return cls
