"""The demo: realistic dossiers in every state, made by playing generated lives through the
real services (never by inserting rows), as of the demo date (June 2022, while the Occitanie
pathway was open). Seeded: the same seed gives the same demo.

Who acts: the demo users (`services.users.DEMO_USERS`), seeded first and then acting as the API
would make them act (`services.users.actor_for`): the officer recorded on a dossier is the
seeded officer's username, so `agent.occitanie` finds its dossiers under « Mes dossiers »; the
head of service votes, finance pays, `cabinet.midi` files its reports. The other consultants and
companies have no account; they act under their own name.

What is left at the demo instant is what a workspace living on 15 June 2022 should show: every
dossier proposed for a vote waits on a council session still to come (its agenda closing, its
date after the demo instant), a few payment claims wait for finance, and no life goes past the
demo instant — a step that would fall after it is not played (the dossier stays where it is)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from db import models as m
from rules.calendar import PARIS, is_working_day, next_working_day
from rules.errors import RuleViolation
from services import commands
from services.audit.anchors import anchor
from services.clock import FrozenClock
from services.programme_sync import sync_programmes
from services.sweep import sweep
from services.users import DEMO_APPLICANT_SIRENS, DEMO_COMPANIES, DEMO_USERS, actor_for, get_user, seed_demo_users

# Occitanie's demo day, while its pathway was alive: its lives are dated around it whatever the
# demo instant, and it is `load_demo`'s default. `usine demo` plays up to the workspace's clock
# instead (`make run`: 15/06/2025, when the three programmes have dossiers).
DEMO_NOW = datetime(2022, 6, 15, 9, 0, tzinfo=PARIS)
# After this day the Occitanie pathway is over (its expense cut-off): a later demo instant plays
# only Occitanie lives that have ended (closed, rejected, withdrawn, lapsed).
OCCITANIE_OPEN_UNTIL = datetime(2022, 12, 31, 23, 59, tzinfo=PARIS)
FINAL_TARGETS = ("closed", "rejected", "withdrawn", "lapsed")

NAMES = ("Atelier", "Forges", "Usinage", "Mécanique", "Plasturgie", "Composites", "Tôlerie", "Fonderie",
         "Chaudronnerie", "Menuiserie industrielle", "Textiles techniques", "Conserverie", "Laiterie",
         "Électronique", "Découpe laser", "Emballages", "Verrerie", "Céramiques")
PLACES = ("Garonne", "du Lauragais", "de l'Aveyron", "Pyrénées", "du Tarn", "Cévennes", "de la Montagne Noire",
          "du Gers", "Catalanes", "de Camargue", "du Quercy", "d'Ariège", "du Minervois", "de Lozère")
FORMS = ("SAS", "SARL", "SA", "SCOP")
CONSULTANTS = ("Cabinet Midi Conseil", "Occitanie Lean Partners", "Atelier 4.0 Conseil", "Numérique & Usine",
               "Performance Industrielle Sud")
TARGETS = {  # share of dossiers by the state they end in
    "draft": 4, "submitted": 8, "eligibility_review": 11, "diagnostic": 10, "action_plan": 10,
    "ready_for_vote": 8, "approved": 10, "in_payment": 12, "closed": 10, "rejected": 7, "withdrawn": 5,
    "lapsed": 5,
}
DEMO_REGION = "Occitanie"
DEMO_PROGRAMME = "occitanie-prif"
# Applicants without an account sign their candidacy as the company's contact.
APPLICANT_CONTACT = "Contact entreprise"
# Every `PENDING_CLAIM_EVERY`-th life of these targets ends with a payment claim filed in the
# last weeks and not paid yet: finance's worklist at the demo instant.
PENDING_CLAIM_EVERY = {"approved": 5, "in_payment": 4}


class DemoInstantReached(Exception):
    """A life's next step falls after the demo instant: it is not played."""


@dataclass(frozen=True)
class DemoCast:
    """The seeded demo users the demo acts as, by role (one source of truth: `DEMO_USERS`)."""

    officers: tuple[commands.Actor, ...]
    head: commands.Actor
    finance: commands.Actor
    consultants: dict[str, commands.Actor]   # consultant firm -> its account's actor
    applicants: dict[str, commands.Actor]    # SIREN -> its account's actor

    def consultant(self, firm: str) -> commands.Actor:
        return self.consultants.get(firm) or commands.Actor(firm, "consultant", consultant=firm)

    def applicant(self, siren: str) -> commands.Actor:
        return self.applicants.get(siren) or commands.Actor(APPLICANT_CONTACT, "applicant", siren=siren)


def demo_cast(uow_factory, region: str = DEMO_REGION) -> DemoCast:
    """The actors of the seeded demo users (call after `seed_demo_users`): the officers, head
    and finance of `region`, the consultants' and applicants' accounts."""
    with uow_factory() as uow:
        actors = [actor_for(get_user(uow, spec["username"])) for spec in DEMO_USERS]

    def regional(role: str) -> list[commands.Actor]:
        return [a for a in actors if a.role == role and region in (a.regions or ())]

    officers, heads, finances = regional("officer"), regional("head"), regional("finance")
    if not (officers and heads and finances):
        raise RuntimeError(f"demo users: an officer, a head and a finance account of {region} are needed")
    return DemoCast(tuple(officers), heads[0], finances[0],
                    {a.consultant: a for a in actors if a.role == "consultant" and a.consultant},
                    {a.siren: a for a in actors if a.role == "applicant" and a.siren})


def luhn_siren(rng: random.Random) -> str:
    base = [rng.randint(0, 9) for _ in range(8)]
    base[0] = rng.randint(3, 9)
    for check in range(10):
        digits = base + [check]
        total = 0
        for i, d in enumerate(reversed(digits)):
            if i % 2 == 1:
                d *= 2
                d = d - 9 if d > 9 else d
            total += d
        if total % 10 == 0:
            return "".join(map(str, digits))
    raise AssertionError("unreachable")


@dataclass
class _Life:
    rng: random.Random
    uow_factory: object
    clock: FrozenClock
    cast: DemoCast
    officer: commands.Actor
    pending_claim: bool = False
    siren: str | None = None
    dossier_id: int | None = None
    commands_run: int = 0
    now: datetime = DEMO_NOW  # the demo instant: no step is played after it

    def at(self, instant: datetime) -> None:
        if instant > self.now:
            raise DemoInstantReached()
        self.clock.set(instant)

    def recent(self, after: datetime, days_back: tuple[int, int]) -> datetime:
        """A working-day office hour `days_back` days before the demo instant, but not before
        `after`: when a step is meant to be fresh at the demo instant (a proposal for the
        coming session, a claim finance has not paid yet)."""
        for _ in range(20):
            day = (self.now - timedelta(days=self.rng.randint(*days_back))).date()
            if is_working_day(day):
                break
        instant = datetime(day.year, day.month, day.day, self.rng.randint(9, 16), self.rng.choice([0, 15, 30, 45]),
                           tzinfo=PARIS)
        return max(instant, after)

    def actor(self, role: str, consultant: str | None) -> commands.Actor:
        if role == "officer":
            return self.officer
        if role == "head":
            return self.cast.head
        if role == "finance":
            return self.cast.finance
        if role == "consultant":
            return self.cast.consultant(consultant)
        if role == "applicant":
            return self.cast.applicant(self.siren)
        raise ValueError(role)

    def session(self, prefix: str, t: datetime) -> str:
        """The council session of the week of `t` (code `PREFIX-2025-S24`), planned by the head on
        its first proposal: the programme's lead time ahead, moved to the next working day, the
        agenda closing its usual number of days before — as a head plans one ahead (a session
        created by a proposal itself keeps the lead time exactly, weekend or not)."""
        from services.council import plan_session

        code = f"{prefix}-{t:%G-S%V}"
        with self.uow_factory() as uow:
            if uow.session.scalar(select(m.CouncilSession.id).where(m.CouncilSession.code == code)) is not None:
                return code  # planned by an earlier proposal of the week
            programme = uow.catalogue.get(*uow.session.execute(
                select(m.Dossier.programme_id, m.Dossier.programme_version)
                .where(m.Dossier.id == self.dossier_id)).one())
            council = programme.council
            day = next_working_day(t.date() + timedelta(days=council.session_after_days))
            plan_session(uow=uow, clock=self.clock, actor=self.cast.head, code=code, programme_id=programme.id,
                         session_date=day, agenda_closes_on=day - timedelta(days=council.agenda_closes_days_before))
        return code

    def do(self, fn, role: str, **kwargs):
        actor = self.actor(role, kwargs.pop("_consultant", None))
        with self.uow_factory() as uow:
            out = fn(uow=uow, clock=self.clock, actor=actor,
                     **({"dossier_id": self.dossier_id} if self.dossier_id else {}), **kwargs)
        self.commands_run += 1
        return out


def _company(rng: random.Random, target: str, siren: str | None = None) -> dict:
    employees = rng.choice([8, 12, 25, 45, 60, 95, 140, 210, 320, 800])
    if target == "rejected" and rng.random() < 0.5:
        employees = rng.choice([5200, 6400])
    name = f"{rng.choice(NAMES)} {rng.choice(PLACES)} {rng.choice(FORMS)}"
    email = f"contact@{name.split()[0].lower().replace('é', 'e').replace('ô', 'o')}-{rng.randint(10, 99)}.example.fr"
    if siren in DEMO_COMPANIES:  # a seeded applicant's company keeps its name and address
        name, email = DEMO_COMPANIES[siren]["name"], DEMO_COMPANIES[siren]["email"]
    return {
        "siren": siren or luhn_siren(rng), "name": name, "employees": employees,
        "equity": f"{rng.choice([15000, 40000, 90000, 150000, 300000, 1200000])}.00",
        "region": "Occitanie", "first_fy_months": rng.choice([12, 18, 24, 36, 60]),
        "in_difficulty": False, "tax_social_up_to_date": True,
        "activity": rng.choice(["industrial"] * 8 + ["ess_ei_ea", "ess_production_50"]),
        "email": email,
    }


def _play(life: _Life, target: str, start: datetime, siren: str | None = None) -> None:
    rng = life.rng
    t = start
    step = lambda days, hours=0: t + timedelta(days=days, hours=hours)  # noqa: E731
    company = _company(rng, target, siren)
    life.siren = company["siren"]
    prior = []
    if rng.random() < 0.2:
        prior = [{"granted_on": (start - timedelta(days=rng.randint(60, 700))).date().isoformat(),
                  "amount": f"{rng.choice([20000, 60000, 120000, 185000])}.00"}]
    life.at(t)
    if target == "draft":
        out = life.do(commands.start_candidacy, "applicant", programme_id=DEMO_PROGRAMME, company=company,
                      de_minimis_prior=prior, documents=["kbis", "rib"])
        life.dossier_id = out.dossier_id
        return
    missing_tax = target in ("lapsed",) or (target == "eligibility_review" and rng.random() < 0.5)
    docs = None
    if missing_tax:
        docs = ["kbis", "financial_statement", "social_certificate", "rib", "de_minimis_attestation", "consultant_quote"]
    out = life.do(commands.submit_candidacy, "applicant", programme_id=DEMO_PROGRAMME, company=company,
                  de_minimis_prior=prior, documents=docs)
    life.dossier_id = out.dossier_id
    if target == "submitted":
        return
    t = step(rng.randint(1, 6)); life.at(t)
    life.do(commands.take_for_review, "officer")
    if target == "withdrawn" and rng.random() < 0.5:
        t = step(rng.randint(3, 20)); life.at(t)
        life.do(commands.withdraw, "applicant", reason=rng.choice(["projet reporté", "changement de direction",
                                                                   "financement obtenu par ailleurs"]))
        return
    if missing_tax:
        t = step(1); life.at(t)
        life.do(commands.request_documents, "officer", kinds=["tax_certificate"])
        if target == "lapsed":
            t = step(31); life.at(t)
            sweep(uow_factory=life.uow_factory, clock=life.clock)
            return
        if target == "eligibility_review":
            return
    if target == "rejected":
        t = step(rng.randint(2, 10)); life.at(t)
        reason = "effectif supérieur à 4 999 salariés" if company["employees"] >= 5000 else \
            rng.choice(["activité hors champ industriel", "entreprise en difficulté (RGEC art. 2(18))"])
        life.do(commands.declare_ineligible, "officer", reason=reason)
        return
    if target == "eligibility_review":
        return
    consultant = rng.choice(CONSULTANTS)
    p1_days = rng.choice([5, 5, 6, 8])
    p1_rate = rng.choice(["950.00", "1100.00", "1200.00", "1250.00"])
    t = step(rng.randint(2, 9)); life.at(t)
    paid = target in ("in_payment", "closed")
    if paid:  # a dossier that reaches payment had its pieces examined along the way
        _review_pending(life)
    life.do(commands.declare_eligible, "officer", consultant=consultant, phase1={"days": p1_days, "day_rate": p1_rate})
    if target == "diagnostic":
        return
    t = step(rng.randint(25, 45)); life.at(t)
    life.do(commands.provide_documents, "consultant", _consultant=consultant, kinds=["diagnostic_report"])
    t = step(2); life.at(t)
    if paid:
        _review_pending(life)
    life.do(commands.accept_diagnostic, "officer")
    if target == "withdrawn":
        t = step(rng.randint(3, 20)); life.at(t)
        life.do(commands.withdraw, "applicant", reason="projet reporté")
        return
    if target == "action_plan":
        return
    t = step(rng.randint(5, 15)); life.at(t)
    life.do(commands.provide_documents, "applicant", kinds=["action_plan", "phase2_quote"])
    p2_days = rng.choice([10, 12, 15, 18, 20, 25])
    p2_rate = rng.choice(["1000.00", "1150.00", "1200.00", "1300.00"])
    t = step(0, 1); life.at(t)
    life.do(commands.submit_action_plan, "applicant", phase2={"days": p2_days, "day_rate": p2_rate})
    t = step(rng.randint(2, 8))
    if target == "ready_for_vote":
        # Proposed in the last week before the demo instant: its session (14 days after the
        # first proposal of that week) is still to come, its agenda still open.
        t = life.recent(t, (1, 6))
    life.at(t)
    # One council session per week of proposals: created by the first proposal of the week, its
    # agenda closes a week later, so every proposal of that week makes it.
    session_code = life.session("CP", t)
    if paid:
        _review_pending(life)
    try:
        life.do(commands.propose_for_vote, "officer", session=session_code)
    except RuleViolation as exc:
        if exc.rule == "de_minimis":
            t = step(1); life.at(t)
            life.do(commands.withdraw, "applicant", reason="plafond de minimis atteint")
            return
        else:
            raise
    if target == "ready_for_vote":
        return
    # The council votes on the session's day (the session may have been created by another
    # proposal of the same week, earlier or later than this one).
    with life.uow_factory() as uow:
        session_date = uow.session.scalar(select(m.CouncilSession.session_date)
                                          .where(m.CouncilSession.code == session_code))
    t = max(step(0, 1), datetime(session_date.year, session_date.month, session_date.day, 14, 30, tzinfo=PARIS))
    life.at(t)
    if target == "rejected":
        life.do(commands.record_vote, "head", session=session_code, outcome="rejected",
                deliberation=f"CP/{t:%Y-%m}/{rng.randint(1, 90)}")
        return
    life.do(commands.record_vote, "head", session=session_code, outcome="approved",
            deliberation=f"CP/{t:%Y-%m}/{rng.randint(1, 90)}")
    if target == "approved" and not life.pending_claim:
        return
    # Phase 1 paid on its invoices, then the phase-2 advance, then (for closed) the balance.
    t = step(rng.randint(5, 20))
    if target == "approved":  # the phase-1 claim is waiting for finance
        t = life.recent(t, (2, 20))
    life.at(t)
    life.do(commands.claim_payment, "applicant", phase=1, kind="final",
            invoices=[{"date": (t - timedelta(days=3)).date().isoformat(), "days": p1_days, "day_rate": p1_rate}])
    if target == "approved":
        return
    t = step(3); life.at(t)
    life.do(commands.pay, "finance")
    t = step(rng.randint(5, 30))
    if target == "in_payment" and life.pending_claim:  # the advance claim is waiting for finance
        t = life.recent(t, (2, 20))
    life.at(t)
    with life.uow_factory() as uow:
        d = uow.dossier(life.dossier_id)
        aid2 = Decimal(next(line["aid"] for line in d.voted["lines"] if line["phase"] == 2))
    advance = (aid2 * Decimal(rng.choice(["0.30", "0.50", "0.70"]))).quantize(Decimal("0.01"))
    if advance > 0:
        life.do(commands.claim_payment, "applicant", phase=2, kind="advance", amount=str(advance))
        if target == "in_payment" and life.pending_claim:
            return
        t = step(4); life.at(t)
        life.do(commands.pay, "finance")
    if target == "in_payment":
        return
    t = step(rng.randint(60, 120)); life.at(t)
    done_days = rng.randint(max(5, p2_days - 6), p2_days)
    half = done_days // 2
    life.do(commands.claim_payment, "applicant", phase=2, kind="final", invoices=[
        {"date": (t - timedelta(days=40)).date().isoformat(), "days": half, "day_rate": p2_rate},
        {"date": (t - timedelta(days=5)).date().isoformat(), "days": done_days - half, "day_rate": p2_rate}])
    t = step(4); life.at(t)
    life.do(commands.pay, "finance")


def _review_pending(life) -> None:
    """The officer accepts every piece of the dossier still to examine (one review each)."""
    with life.uow_factory() as uow:
        pending = list(uow.session.scalars(select(m.Document.id).where(
            m.Document.dossier_id == life.dossier_id, m.Document.review_status == "pending").order_by(m.Document.id)))
    for document_id in pending:
        life.do(commands.review_document, "officer", document_id=document_id, decision="accepted")


def _start_for(rng: random.Random, target: str) -> datetime:
    """How long before the demo date a life of this length starts."""
    span = {"draft": 10, "submitted": 8, "eligibility_review": 12, "lapsed": 60, "withdrawn": 90,
            "rejected": 140, "diagnostic": 40, "action_plan": 90, "ready_for_vote": 110, "approved": 160,
            "in_payment": 240, "closed": 420}[target]
    days_back = span + rng.randint(0, 60) if target in ("closed", "in_payment", "approved") else span + rng.randint(0, 10)
    start = DEMO_NOW - timedelta(days=days_back)
    return start.replace(hour=rng.randint(8, 17), minute=rng.choice([0, 15, 30, 45]))


def load_demo(uow_factory, *, dossiers: int = 240, seed: int = 2021, journal: str | None = None,
              pdl: int | None = None, naq_companies: int | None = None, as_of: datetime = DEMO_NOW) -> dict:
    """Play generated lives (seeded) as the demo users, up to the demo instant `as_of`, then
    sweep as of that instant, then anchor every dossier's chain head (`services.audit.anchors`,
    appended to `journal` when given): a demo database is never left with histories no anchor
    vouches for. `dossiers` Occitanie lives, `pdl` Pays de la Loire ones (default a third of
    `dossiers`) and `naq_companies` Nouvelle-Aquitaine pathways (default a quarter of
    `dossiers`, none before its candidacies open on 1 September 2024). The report's counts are
    read after everything, sweep included."""
    from services import demo_pathways as paths

    rng = random.Random(seed)
    clock = FrozenClock(as_of)
    with uow_factory() as uow:
        programmes = sync_programmes(uow=uow, clock=clock)
    occitanie = TARGETS if as_of <= OCCITANIE_OPEN_UNTIL else {k: v for k, v in TARGETS.items() if k in FINAL_TARGETS}
    weights = list(occitanie.values())
    targets = list(occitanie)
    plan = [targets[i % len(targets)] for i in range(len(targets))]  # every state at least once
    plan += rng.choices(targets, weights=weights, k=max(0, dossiers - len(plan)))
    plan = plan[:dossiers]
    plan = sorted(plan, key=lambda tgt: _start_for(random.Random(seed), tgt))
    lives = []
    for i, target in enumerate(plan):
        # The demo applicant accounts' companies get dossiers in several states.
        siren = DEMO_APPLICANT_SIRENS[(i // 20) % len(DEMO_APPLICANT_SIRENS)] if i % 20 == 0 else None
        lives.append((_start_for(rng, target), target, siren, random.Random(rng.random())))
    lives.sort(key=lambda x: x[0])
    # The accounts exist before the first life starts; the demo then acts as them.
    pdl = dossiers // 3 if pdl is None else pdl
    starts = [lives[0][0]] if lives else []
    if pdl:
        starts.append(datetime(2019, 1, 14, 9, tzinfo=PARIS))  # the day before the first call opens
    first = min(starts) if starts else as_of
    clock.set(first - timedelta(days=1))
    seeded_users = seed_demo_users(uow_factory, clock)
    cast = demo_cast(uow_factory)
    commands_run = 0
    refused = []
    cut_short = 0
    dossier_ids = []
    by_programme: dict[str, int] = {}
    seen: dict = {}

    def run(life: _Life, programme: str, play, *args) -> None:
        nonlocal commands_run, cut_short
        try:
            play(life, *args)
        except RuleViolation as exc:
            refused.append({"programme": programme, "target": " ".join(str(a) for a in args if isinstance(a, (str, int))),
                            "rule": exc.rule, "message": exc.message})
        except DemoInstantReached:
            cut_short += 1
        commands_run += life.commands_run
        if life.dossier_id:
            dossier_ids.append(life.dossier_id)
            by_programme[programme] = by_programme.get(programme, 0) + 1

    for n, (start, target, siren, life_rng) in enumerate(lives):
        k = seen[target] = seen.get(target, -1) + 1
        every = PENDING_CLAIM_EVERY.get(target)
        life = _Life(life_rng, uow_factory, clock, cast, cast.officers[n % len(cast.officers)],
                     pending_claim=bool(every) and k % every == 0, now=as_of)
        run(life, DEMO_PROGRAMME, _play, target, start, siren)
    # Pays de la Loire: its calls 2019–2021, its three lines, its loans.
    if pdl:
        pdl_rng = random.Random(seed * 31 + 7)
        pdl_cast = demo_cast(uow_factory, paths.PDL_REGION)
        keys = list(paths.PDL_TARGETS)
        pdl_plan = keys[:pdl] + pdl_rng.choices(keys, weights=list(paths.PDL_TARGETS.values()),
                                                k=max(0, pdl - len(keys)))
        for n, (line, target) in enumerate(pdl_plan):
            k = seen[(line, target)] = seen.get((line, target), -1) + 1
            life = _Life(random.Random(pdl_rng.random()), uow_factory, clock, pdl_cast,
                         pdl_cast.officers[n % len(pdl_cast.officers)],
                         pending_claim=target == "in_repayment" and k % paths.PENDING_REPAYMENT_EVERY == 0, now=as_of)
            run(life, paths.PDL_PROGRAMME, paths.play_pdl, line, target)
    # Nouvelle-Aquitaine: a diagnostic dossier per company, then the aid dossiers of its plan.
    naq = (dossiers // 4 if naq_companies is None else naq_companies) if as_of > paths.NAQ_OPENS + timedelta(days=200) else 0
    if naq:
        naq_rng = random.Random(seed * 53 + 11)
        naq_cast = demo_cast(uow_factory, paths.NAQ_REGION)
        keys = list(paths.NAQ_TARGETS)
        naq_plan = keys[1:] + ["pathway"] * 3 if naq >= len(keys) + 2 else ["pathway"] * naq
        naq_plan = (naq_plan + naq_rng.choices(keys, weights=list(paths.NAQ_TARGETS.values()),
                                               k=max(0, naq - len(naq_plan))))[:naq]
        for n, target in enumerate(naq_plan):
            siren = DEMO_APPLICANT_SIRENS[1] if n == 0 else None
            life = _Life(random.Random(naq_rng.random()), uow_factory, clock, naq_cast,
                         naq_cast.officers[n % len(naq_cast.officers)], pending_claim=n % 4 == 1, now=as_of)
            opened: list[int] = []

            def play(life, target, siren):
                paths.play_naq(life, target, paths.naq_start(life.rng, target, as_of), siren, opened=opened)

            run(life, paths.NAQ_PROGRAMME, play, target, siren)
            dossier_ids.extend(opened)
            by_programme[paths.NAQ_PROGRAMME] = by_programme.get(paths.NAQ_PROGRAMME, 0) + len(opened)
    # Bring every dossier to the demo date: reminders due by then go out, requests lapse.
    clock.set(as_of)
    report = sweep(uow_factory=uow_factory, clock=clock)
    from services.demo_teams import seed_demo_teams

    teams = seed_demo_teams(uow_factory, clock)  # work sharing: each region's team(s) of officers
    anchored = anchor(uow_factory, clock, journal=journal)
    with uow_factory() as uow:
        return {"as_of": as_of.isoformat(), "programmes_recorded": programmes, "dossiers": len(dossier_ids),
                "by_programme": dict(sorted(by_programme.items())),
                "by_state": demo_state_counts(uow, dossier_ids), "commands": commands_run, "refused": refused,
                "cut_short_by_demo_instant": cut_short, "sweep": report.as_dict(),
                "at_demo_instant": demo_worklists(uow, dossier_ids, as_of), "users": seeded_users, "teams": teams,
                "anchor": anchored.as_dict()}


def demo_state_counts(uow, dossier_ids: list[int]) -> dict[str, int]:
    """The states of these dossiers, as they stand now (read from the database)."""
    counts: dict[str, int] = {}
    for chunk in _chunks(dossier_ids):
        for state, n in uow.session.execute(select(m.Dossier.status, func.count()).where(m.Dossier.id.in_(chunk))
                                            .group_by(m.Dossier.status)):
            counts[state] = counts.get(state, 0) + n
    return dict(sorted(counts.items()))


def demo_worklists(uow, dossier_ids: list[int], now: datetime) -> dict:
    """What the head of service and finance find waiting at the demo instant: the dossiers
    proposed for a vote, by session (date after `now` or not), and the pending payment claims."""
    today = now.astimezone(PARIS).date()
    sessions: dict[str, dict] = {}
    pending = 0
    for chunk in _chunks(dossier_ids):
        for code, day, n in uow.session.execute(
                select(m.CouncilSession.code, m.CouncilSession.session_date, func.count())
                .join(m.Dossier, m.Dossier.session_id == m.CouncilSession.id)
                .where(m.Dossier.id.in_(chunk), m.Dossier.status == "ready_for_vote")
                .group_by(m.CouncilSession.code, m.CouncilSession.session_date)):
            entry = sessions.setdefault(code, {"session_date": day.isoformat(), "upcoming": day > today, "dossiers": 0})
            entry["dossiers"] += n
        pending += uow.session.scalar(select(func.count()).select_from(m.PaymentClaim)
                                      .where(m.PaymentClaim.dossier_id.in_(chunk), m.PaymentClaim.status == "pending"))
    return {"sessions_with_dossiers_to_vote": dict(sorted(sessions.items())),
            "pending_payment_claims": pending}


def _chunks(ids: list[int], size: int = 500):
    for i in range(0, len(ids), size):
        yield ids[i:i + size]
