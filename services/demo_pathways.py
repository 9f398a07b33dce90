"""The demo's lives of the two example programmes of SPEC §11, played through the services like
the Occitanie ones (`services.demo`): Pays de la Loire's candidacies in its calls 2019–2021 on
its three lines, with their loans disbursed, repaid, in default, written off; and, when the demo
instant is after 1 September 2024, Nouvelle-Aquitaine's companies, each with its diagnostic
dossier, its progress plan and the aid dossiers opened from it.

No step falls after the demo instant (`_Life.at`). The loans' due notices and reminders before
the demo instant are not replayed (no sweep runs in between); the demo's final sweep sends those
due at the demo instant, and a default is declared by this dossier's own loan sweep
(`services.sweep.sweep_one_loan`) on the day it falls due."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from db import models as m
from rules.calendar import PARIS
from services import commands, loans, pathways
from services.sweep import sweep_one_loan

PDL_PROGRAMME = "pdl-ami-idf-exemple"
NAQ_PROGRAMME = "naq-udf4-exemple"
PDL_REGION = "Pays de la Loire"
NAQ_REGION = "Nouvelle-Aquitaine"
NAQ_OPENS = datetime(2024, 9, 2, 9, 0, tzinfo=PARIS)

PDL_NAMES = ("Usinage", "Chaudronnerie", "Plasturgie", "Mécanique de précision", "Menuiserie industrielle",
             "Fonderie", "Électronique", "Emballages", "Composites", "Conserverie", "Tôlerie")
PDL_PLACES = ("Loire", "Vendée", "Sarthe", "Mayenne", "de l'Erdre", "Nantaise", "du Maine", "Angevine",
              "Atlantique", "des Mauges", "du Choletais")
NAQ_NAMES = ("Composites", "Forges", "Usinage", "Aéro-mécanique", "Scierie", "Papeterie", "Plasturgie",
             "Robotique", "Verrerie", "Découpe", "Chaudronnerie", "Cognaçaise de tonnellerie")
NAQ_PLACES = ("Charente", "Gironde", "Landes", "Béarn", "du Limousin", "Périgord", "des Deux-Sèvres",
              "Basque", "Corrèze", "du Médoc", "de la Vienne")
PDL_CONSULTANTS = ("Bureau d'études Erdre", "Loire Industrie Conseil", "Atelier 4.0 Conseil")
NAQ_CONSULTANTS = ("Atlantique Lean Conseil", "Aquitaine Performance", "Numérique & Usine")

# The calls of the example file (SPEC §11.1): (code, opening, closing).
CALLS = tuple((f"AMI-{y}-{k}", date(y, m1, d1), date(y, m2, d2)) for y in (2019, 2020, 2021)
              for k, (m1, d1, m2, d2) in enumerate(((1, 15, 3, 15), (5, 1, 6, 30), (9, 1, 10, 31)), start=1))

# A PdL life: (line, target). Loans are voted only where a base rate is recorded (votes from
# March 2020 to December 2021: `reference_rate_unknown` otherwise; an AMI-2020-1 candidacy may be
# voted in February), so their calls are AMI-2020-2 to AMI-2021-2 (-3 for those still under way).
PDL_TARGETS = {  # in order of priority: a small demo plays the first ones
    (2, "in_repayment"): 12, (3, "in_default"): 4, (1, "instruction"): 5, (3, "written_off"): 3,
    (3, "in_repayment"): 14, (2, "in_default"): 5, (1, "closed"): 12, (3, "closed"): 5, (2, "closed"): 4,
    (1, "ready_for_vote"): 4, (1, "approved"): 4, (1, "rejected"): 5, (1, "withdrawn"): 4, (2, "written_off"): 3,
}
# Share of the lives in repayment that leave the instalment due in the last weeks unpaid:
# finance's repayments to record at the demo instant.
PENDING_REPAYMENT_EVERY = 3


def _office(day: date, rng: random.Random, hour: tuple[int, int] = (9, 16)) -> datetime:
    return datetime(day.year, day.month, day.day, rng.randint(*hour), rng.choice([0, 15, 30, 45]), tzinfo=PARIS)


def _pdl_company(rng: random.Random) -> dict:
    from services.demo import luhn_siren

    name = f"{rng.choice(PDL_NAMES)} {rng.choice(PDL_PLACES)} {rng.choice(['SAS', 'SARL', 'SA'])}"
    return {"siren": luhn_siren(rng), "name": name, "employees": rng.choice([12, 25, 35, 60, 80, 120, 180, 300]),
            "equity": f"{rng.choice([150000, 400000, 900000, 2000000])}.00", "region": PDL_REGION,
            "first_fy_months": rng.choice([24, 36, 60, 120]), "in_difficulty": False,
            "tax_social_up_to_date": True, "activity": "industrial",
            "email": f"contact@{name.split()[0].lower().replace('é', 'e').replace('ô', 'o')}-{rng.randint(10, 99)}.example.fr"}


def _pdl_call(rng: random.Random, line: int, target: str) -> tuple[str, date, date]:
    if target in ("instruction", "ready_for_vote", "approved"):
        pool = CALLS[-2:]          # the last calls of 2021: still under way in the demo
    elif line == 2 and target in ("in_default", "written_off"):
        pool = CALLS[4:6]          # 2020: an instalment long overdue by June 2022
    elif line == 2 and target == "in_repayment":
        pool = CALLS[4:8]          # its first principal falls 15 months after disbursement
    elif line > 1:
        pool = CALLS[4:8]          # a vote within a recorded base-rate period (June 2020 – 2021)
    else:
        pool = CALLS[:8]
    return rng.choice(pool)


def _vote(life, prefix: str, t: datetime, outcome: str = "approved") -> datetime:
    """Propose for the week's session, then the head votes on the session's day."""
    life.at(t)
    code = life.session(prefix, t)
    life.do(commands.propose_for_vote, "officer", session=code)
    with life.uow_factory() as uow:
        day = uow.session.scalar(select(m.CouncilSession.session_date).where(m.CouncilSession.code == code))
    t = max(t + timedelta(hours=1), datetime(day.year, day.month, day.day, 14, 30, tzinfo=PARIS))
    life.at(t)
    life.do(commands.record_vote, "head", session=code, outcome=outcome,
            deliberation=f"{prefix}/{t:%Y-%m}/{life.rng.randint(1, 120):03d}")
    return t


def play_pdl(life, line: int, target: str) -> None:
    rng = life.rng
    code, opens, closes = _pdl_call(rng, line, target)
    day = opens + timedelta(days=rng.randint(0, (closes - opens).days))
    t = _office(day, rng)
    company = _pdl_company(rng)
    life.siren = company["siren"]
    life.at(t)
    out = life.do(commands.submit_candidacy, "applicant", programme_id=PDL_PROGRAMME, company=company,
                  de_minimis_prior=[], line=line)
    life.dossier_id = out.dossier_id
    t += timedelta(days=rng.randint(2, 6)); life.at(t)
    life.do(commands.take_for_review, "officer")
    if target == "withdrawn":
        t += timedelta(days=rng.randint(5, 20)); life.at(t)
        life.do(commands.withdraw, "applicant", reason=rng.choice(["projet reporté", "financement obtenu par ailleurs"]))
        return
    if target == "rejected":
        t += timedelta(days=rng.randint(3, 10)); life.at(t)
        life.do(commands.declare_ineligible, "officer",
                reason=rng.choice(["activité hors du champ de l'AMI", "projet sans dimension Industrie du futur"]))
        return
    t += timedelta(days=rng.randint(3, 10)); life.at(t)
    if line == 1:
        days, rate = rng.choice([4, 6, 8, 10, 12]), rng.choice(["900.00", "1000.00", "1150.00"])
        life.do(commands.declare_eligible, "officer", consultant=rng.choice(PDL_CONSULTANTS),
                phase1={"days": days, "day_rate": rate})
    else:
        expenses = _pdl_expenses(rng, line)
        total = sum(Decimal(e["amount"]) for e in expenses)
        if line == 2:
            instruments = {"loan": str((total * Decimal("0.5")).quantize(Decimal("1")))}
            if rng.random() < 0.6:
                instruments["subsidy"] = str((total * Decimal("0.2")).quantize(Decimal("1")))
        else:
            instruments = {"subsidy": str((total * Decimal("0.1")).quantize(Decimal("1"))),
                           "loan": str((total * Decimal("0.4")).quantize(Decimal("1")))}
        life.do(commands.declare_eligible, "officer", expenses=expenses, instruments=instruments)
    if target == "instruction":
        return
    t += timedelta(days=rng.randint(5, 15))
    if target == "ready_for_vote":
        t = life.recent(t, (1, 6))
        life.at(t)
        life.do(commands.propose_for_vote, "officer", session=life.session("CP-PDL", t))
        return
    t = _vote(life, "CP-PDL", t)
    if target == "approved":
        return
    if line == 1:
        t += timedelta(days=rng.randint(40, 120)); life.at(t)
        life.do(commands.claim_payment, "applicant", phase=1, kind="final",
                invoices=[{"date": (t - timedelta(days=5)).date().isoformat(), "days": days, "day_rate": rate}])
        t += timedelta(days=rng.randint(2, 6)); life.at(t)
        life.do(commands.pay, "finance")
        return
    _play_loan(life, t, line, target, expenses)


def _pdl_expenses(rng: random.Random, line: int) -> list[dict]:
    if line == 2:
        return [{"label": "Salaires de l'équipe projet", "amount": f"{rng.choice([60000, 90000, 120000])}.00"},
                {"label": "Location d'un banc d'essai", "amount": f"{rng.choice([20000, 40000, 60000])}.00"},
                {"label": "Capteurs et matériel de test", "amount": f"{rng.choice([10000, 20000, 35000])}.00"}]
    return [{"label": rng.choice(["Ligne d'usinage robotisée", "Presse numérique", "Cellule de soudage robotisée"]),
             "amount": f"{rng.choice([250000, 400000, 650000, 900000])}.00"},
            {"label": "Intégration et mise en service", "amount": f"{rng.choice([50000, 80000, 150000])}.00"}]


def _play_loan(life, voted_at: datetime, line: int, target: str, expenses: list[dict]) -> None:
    rng = life.rng
    t = voted_at + timedelta(days=rng.randint(15, 40)); life.at(t)
    life.do(loans.disburse_loan, "finance")
    disbursed = t
    with life.uow_factory() as uow:
        d = uow.dossier(life.dossier_id)
        plan = loans.plan_of(d)
        # A line's `aid` is its subsidy; its loan is under `loan`.
        subsidy = next((ln for ln in d.voted["lines"] if Decimal(ln.get("aid") or "0") > 0), None)
    if subsidy is not None:  # the subsidy is paid once, on its final claim, before the first instalment
        t = disbursed + timedelta(days=rng.randint(40, 60)); life.at(t)
        total = sum(Decimal(e["amount"]) for e in expenses)
        first = (total * Decimal("0.6")).quantize(Decimal("0.01"))
        life.do(commands.claim_payment, "applicant", phase=subsidy["phase"], kind="final", invoices=[
            {"date": (disbursed - timedelta(days=10)).date().isoformat(), "amount": str(first)},
            {"date": (t - timedelta(days=3)).date().isoformat(), "amount": str(total - first)}])
        t += timedelta(days=rng.randint(2, 5)); life.at(t)
        life.do(commands.pay, "finance")
    today = life.now.astimezone(PARIS).date()
    due = [i for i in plan if i.due_on <= today]
    if target in ("in_default", "written_off"):
        late = [k for k, i in enumerate(due) if i.due_on + timedelta(days=61) <= today - timedelta(days=45)]
        stop = rng.choice(late) if late else None
        paid = due[:stop] if stop is not None else due
    elif target == "closed":
        paid = due[:rng.randint(1, max(1, len(due) - 1))] if due else []
        stop = None
    else:
        pending = life.pending_claim
        paid = [i for i in due if not (pending and i.due_on > today - timedelta(days=25))]
        stop = None
    last = t  # the disbursement, or the subsidy paid after it: time only moves on
    for inst in paid:
        received = inst.due_on + timedelta(days=rng.choice([0, 0, 1, 2, 5]))
        t = max(_office(received, rng), last + timedelta(minutes=5)); life.at(t)
        life.do(loans.record_repayment, "finance", amount=str(inst.principal + inst.interest),
                received_on=t.date().isoformat())
        last = t
    if target == "closed":
        t = last + timedelta(days=rng.randint(1, 20)); life.at(t)
        with life.uow_factory() as uow:
            outstanding = loans.loan_figures(uow.session, uow.dossier(life.dossier_id))["outstanding"]
        life.do(loans.record_repayment, "finance", amount=outstanding, received_on=t.date().isoformat())
        return
    if target in ("in_default", "written_off") and stop is not None:
        t = max(datetime.combine(due[stop].due_on + timedelta(days=61), datetime.min.time(), PARIS).replace(hour=6),
                last + timedelta(minutes=5))
        life.at(t)
        sweep_one_loan(uow_factory=life.uow_factory, clock=life.clock, dossier_id=life.dossier_id)
        life.commands_run += 1
        if target == "written_off":
            t = _office((t + timedelta(days=rng.randint(20, 40))).date(), rng); life.at(t)
            life.do(loans.write_off, "head", reason=rng.choice(
                ["liquidation judiciaire de l'entreprise", "créance irrécouvrable après mise en demeure",
                 "plan de cession sans reprise du prêt"]))


# -- Nouvelle-Aquitaine --------------------------------------------------------------------------

NAQ_TARGETS = {"pathway": 44, "draft": 1, "submitted": 2, "eligibility_review": 2, "diagnostic": 3,
               "action_plan": 3, "ready_for_vote": 2, "rejected": 2, "withdrawn": 1}
AID_TARGETS = ("closed", "closed", "in_payment", "in_payment", "approved", "ready_for_vote", "instruction")
THEMES = ("economic", "environmental", "social")


def _naq_company(rng: random.Random, siren: str | None = None) -> dict:
    from services.demo import luhn_siren
    from services.users import DEMO_COMPANIES

    name = f"{rng.choice(NAQ_NAMES)} {rng.choice(NAQ_PLACES)} {rng.choice(['SAS', 'SARL', 'SA'])}"
    email = f"contact@{name.split()[0].lower().replace('é', 'e')}-{rng.randint(10, 99)}.example.fr"
    if siren in DEMO_COMPANIES:
        name, email = DEMO_COMPANIES[siren]["name"], DEMO_COMPANIES[siren]["email"]
    return {"siren": siren or luhn_siren(rng), "name": name, "employees": rng.choice([15, 30, 60, 110, 200, 400, 900]),
            "equity": f"{rng.choice([200000, 500000, 800000, 3000000])}.00", "region": NAQ_REGION,
            "first_fy_months": rng.choice([24, 48, 60, 120]), "in_difficulty": False,
            "tax_social_up_to_date": True, "activity": "industrial", "email": email}


def naq_start(rng: random.Random, target: str, now: datetime) -> datetime:
    """Pathways start in the programme's first months; earlier states are recent candidacies."""
    if target == "pathway":
        span = max(1, min(150, (now - NAQ_OPENS).days - 150))
        start = NAQ_OPENS + timedelta(days=rng.randint(0, span))
    else:
        back = {"draft": 8, "submitted": 10, "eligibility_review": 15, "diagnostic": 45, "action_plan": 80,
                "ready_for_vote": 110, "rejected": 60, "withdrawn": 60}[target]
        start = max(NAQ_OPENS, now - timedelta(days=back + rng.randint(0, 10)))
    return start.replace(hour=rng.randint(9, 16), minute=rng.choice([0, 15, 30, 45]))


def play_naq(life, target: str, start: datetime, siren: str | None = None, opened: list[int] | None = None) -> list[int]:
    """One company's pathway; returns the aid dossiers opened (the diagnostic is `life.dossier_id`),
    also appended to `opened` as they open, so that a life cut short by the demo instant still
    counts the ones it opened."""
    opened = [] if opened is None else opened
    rng = life.rng
    company = _naq_company(rng, siren)
    life.siren = company["siren"]
    t = start
    life.at(t)
    if target == "draft":
        out = life.do(commands.start_candidacy, "applicant", programme_id=NAQ_PROGRAMME, company=company,
                      de_minimis_prior=[], documents=["kbis", "rib"])
        life.dossier_id = out.dossier_id
        return opened
    out = life.do(commands.submit_candidacy, "applicant", programme_id=NAQ_PROGRAMME, company=company,
                  de_minimis_prior=[])
    life.dossier_id = out.dossier_id
    if target == "submitted":
        return opened
    t += timedelta(days=rng.randint(1, 5)); life.at(t)
    life.do(commands.take_for_review, "officer")
    if target == "eligibility_review":
        return opened
    if target == "rejected":
        t += timedelta(days=rng.randint(3, 10)); life.at(t)
        life.do(commands.declare_ineligible, "officer", reason="activité hors du champ industriel")
        return opened
    consultant = rng.choice(NAQ_CONSULTANTS)
    days, rate = rng.randint(3, 10), rng.choice(["850.00", "950.00", "1000.00", "1100.00"])
    t += timedelta(days=rng.randint(2, 7)); life.at(t)
    life.do(commands.declare_eligible, "officer", consultant=consultant, phase1={"days": days, "day_rate": rate})
    if target == "diagnostic":
        return opened
    t += timedelta(days=rng.randint(20, 35)); life.at(t)
    life.do(commands.provide_documents, "consultant", _consultant=consultant, kinds=["diagnostic_report"])
    t += timedelta(days=1); life.at(t)
    life.do(commands.accept_diagnostic, "officer")
    if target == "withdrawn":
        t += timedelta(days=rng.randint(3, 15)); life.at(t)
        life.do(commands.withdraw, "applicant", reason="projet reporté")
        return opened
    if target == "action_plan":
        return opened
    n_actions = rng.choice([3, 3, 4, 4, 5])
    actions = [{"number": k, "theme": THEMES[(k - 1) % 3] if k > 1 else "economic",
                "budget": f"{rng.choice([25000, 60000, 90000, 150000, 240000])}.00"} for k in range(1, n_actions + 1)]
    t += timedelta(days=rng.randint(3, 10)); life.at(t)
    life.do(commands.provide_documents, "applicant", kinds=["action_plan"])
    t += timedelta(hours=1); life.at(t)
    life.do(commands.submit_action_plan, "applicant", actions=actions)
    t += timedelta(days=rng.randint(1, 5))
    if target == "ready_for_vote":
        t = life.recent(t, (1, 6)); life.at(t)
        life.do(commands.propose_for_vote, "officer", session=life.session("CP-NAQ", t))
        return opened
    t = _vote(life, "CP-NAQ", t)
    t += timedelta(days=rng.randint(5, 12)); life.at(t)
    life.do(commands.claim_payment, "applicant", phase=1, kind="final",
            invoices=[{"date": (t - timedelta(days=20)).date().isoformat(), "days": days, "day_rate": rate}])
    t += timedelta(days=rng.randint(2, 5)); life.at(t)
    life.do(commands.pay, "finance")
    plan_id = life.dossier_id
    n_aid = min(n_actions, rng.choice([2, 3, 3, 4, 4, 5]))
    for k in range(1, n_aid + 1):
        t += timedelta(days=rng.randint(3, 25))
        if t > life.now:
            break
        life.dossier_id = None
        life.at(t)
        if rng.random() < 0.5:
            kw = {"consulting": {"days": rng.randint(5, 25), "day_rate": rng.choice(["900.00", "1000.00", "1200.00"])}}
        else:
            kw = {"investment": {"expenses": [{"label": rng.choice(["Presse à injecter", "Robot collaboratif",
                                                                       "Logiciel de supervision", "Four basse consommation"]),
                                                "amount": f"{rng.choice([40000, 90000, 180000, 250000])}.00"}]}}
        out = life.do(pathways.open_aid_dossier, "applicant", plan_id=plan_id, actions=[k], **kw)
        life.dossier_id = out.dossier_id
        opened.append(out.dossier_id)
        try:
            _play_aid(life, t, rng.choice(AID_TARGETS), kw)
        except Exception:
            life.dossier_id = plan_id
            raise
    life.dossier_id = plan_id
    return opened


def _play_aid(life, t: datetime, target: str, kw: dict) -> None:
    from services.demo import DemoInstantReached

    rng = life.rng
    if target == "instruction":
        return
    t += timedelta(days=rng.randint(3, 12))
    if target == "ready_for_vote":
        t = life.recent(t, (1, 6)); life.at(t)
        life.do(commands.propose_for_vote, "officer", session=life.session("CP-NAQ", t))
        return
    try:
        t = _vote(life, "CP-NAQ", t)
    except DemoInstantReached:
        return
    if target == "approved":
        return
    with life.uow_factory() as uow:
        line = uow.dossier(life.dossier_id).voted["lines"][0]
    aid = Decimal(line["aid"])
    t += timedelta(days=rng.randint(10, 30)); life.at(t)
    life.do(commands.claim_payment, "applicant", phase=line["phase"], kind="advance",
            amount=str((aid * Decimal("0.5")).quantize(Decimal("0.01"))))
    if target == "in_payment" and life.pending_claim:
        return
    t += timedelta(days=rng.randint(2, 5)); life.at(t)
    life.do(commands.pay, "finance")
    if target == "in_payment":
        return
    t += timedelta(days=rng.randint(60, 120)); life.at(t)
    if "consulting" in kw:
        c = kw["consulting"]
        invoices = [{"date": (t - timedelta(days=10)).date().isoformat(), "days": c["days"], "day_rate": c["day_rate"]}]
    else:
        invoices = [{"date": (t - timedelta(days=10)).date().isoformat(), "amount": kw["investment"]["expenses"][0]["amount"]}]
    life.do(commands.claim_payment, "applicant", phase=line["phase"], kind="final", invoices=invoices)
    t += timedelta(days=rng.randint(2, 5)); life.at(t)
    life.do(commands.pay, "finance")
