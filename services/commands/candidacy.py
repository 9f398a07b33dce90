"""The candidacy: start a draft, submit it (or a new one in one go) within an open call —
the window guard, the aid line and the earlier dossier it cites, and the dossier's creation."""
from __future__ import annotations

from datetime import date
from typing import Callable

from sqlalchemy import select

from db import models as m
from programmes import Programme
from programmes.letters import missing_pieces
from rules import french
from rules.calendar import paris_date
from rules.de_minimis import PriorAid
from rules.eligibility import CompanyFacts
from rules.errors import InvalidInput, NotAllowed, RuleViolation
from rules.money import ZERO, parse_amount
from services.clock import Clock
from services.commands.base import _COMPANY_BY_SIREN, Actor, Outcome, _Command, _commit, _list_of_kinds, _move
from services.commands.documents import PLACEHOLDER_NAMES, _placeholder_content, _store_document
from services.events import append_event
from services.outbox import applicant_recipient, dossier_context, enqueue
from services.uow import UnitOfWork


def start_candidacy(*, uow: UnitOfWork, clock: Clock, actor: Actor, programme_id: str, company: dict,
                    de_minimis_prior: list | None = None, documents: list | None = None,
                    line: int | None = None, cites: int | None = None, project: dict | None = None) -> Outcome:
    """The applicant starts a candidacy: a draft, which it can complete and submit later.
    `project`: what the company says of its project (the portal's form: title, description,
    expense and aid asked, as checked strings), recorded in the event."""
    return _create(uow=uow, clock=clock, actor=actor, programme_id=programme_id, company=company,
                   de_minimis_prior=de_minimis_prior, documents=documents, submit=False, line=line, cites=cites,
                   project=project)


def submit_candidacy(*, uow: UnitOfWork, clock: Clock, actor: Actor, programme_id: str | None = None,
                     company: dict | None = None, de_minimis_prior: list | None = None,
                     documents: list | None = None, dossier_id: int | None = None,
                     line: int | None = None, cites: int | None = None,
                     expected_version: int | None = None) -> Outcome:
    """Submit within an open AMI window (a call) of the programme: a new candidacy in one go, or a
    draft started earlier (`dossier_id`). `line` is the programme's aid line (default 1); `cites`
    the company's earlier dossier of the same programme (Pays de la Loire)."""
    if dossier_id is None:
        if programme_id is None or company is None:
            raise InvalidInput("company", "company et programme sont obligatoires pour une nouvelle candidature.")
        return _create(uow=uow, clock=clock, actor=actor, programme_id=programme_id, company=company,
                       de_minimis_prior=de_minimis_prior, documents=documents, submit=True, line=line, cites=cites)
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    cmd.move("submit_candidacy", {"window_open": _window_open(cmd.programme, cmd.today)})
    call = cmd.programme.call_on(cmd.today)
    cmd.dossier.call_code = call.code if call else None
    cmd.record("submit_candidacy", {"programme": cmd.programme.key, "from_draft": True, "call": cmd.dossier.call_code})
    provided = set(cmd.session.scalars(select(m.Document.kind).where(m.Document.dossier_id == cmd.dossier.id)))
    cmd.notify("candidacy_received", "candidacy_received", submitted_at=cmd.now.isoformat(),
               **missing_pieces(cmd.programme, provided, cmd.today))
    _commit(uow, dossier_id)
    return cmd.outcome()


def _window_open(programme: Programme, today: date) -> Callable[[], None]:
    def guard() -> None:
        if programme.call_on(today) is None:
            ordered = sorted(programme.windows, key=lambda w: w.opens_on)
            # Name the calls around the day rather than every call of every year.
            nearest = [w for w in ordered if w.closes_on < today][-1:] + [w for w in ordered if w.opens_on > today][:1]
            windows = ", ".join(f"{(w.code + ' ') if w.code else ''}{french.day(w.opens_on)}–{french.day(w.closes_on)}"
                                for w in nearest) or "aucune"
            raise RuleViolation("window_closed",
                                f"Aucun appel à manifestation d'intérêt ouvert le {french.day(today)} "
                                f"pour {programme.name} (fenêtres : {windows}).", field="at")
    return guard


def _line_number(programme: Programme, raw) -> int:
    if raw is None:
        return programme.dossier_lines[0].number
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidInput("line", f"line : un numéro de ligne d'aide entier est attendu (reçu « {raw} »).")
    line = programme.line(raw)
    if line.shape == "aid":
        raise InvalidInput("line", f"line : un dossier de la ligne « {line.name} » s'ouvre depuis un plan de progrès "
                           f"approuvé (open_aid_dossier), pas par une candidature.")
    return line.number


def _cited(session, programme: Programme, line_number: int, siren: str, cites) -> int | None:
    """The earlier dossier a candidacy cites: the same company's, in the same programme, of a
    line this line may cite."""
    if cites is None:
        return None
    if isinstance(cites, bool) or not isinstance(cites, int):
        raise InvalidInput("cites", "cites : l'identifiant d'un dossier antérieur de l'entreprise est attendu.")
    cited = session.get(m.Dossier, cites)
    line = programme.line(line_number)
    if cited is None or cited.company_facts["siren"] != siren or cited.programme_id != programme.id:
        raise InvalidInput("cites", "cites : ce dossier n'est pas un dossier antérieur de l'entreprise dans ce programme.")
    if cited.line not in line.may_cite:
        raise InvalidInput("cites", f"cites : la ligne « {line.name} » ne cite pas un dossier de la ligne {cited.line}.")
    return cited.id


def insert_dossier(session, dossier: m.Dossier, programme, now) -> None:
    """Add a new dossier and give it its reference, « OCC-2021-000042 » (region, Paris year of
    creation, row id): the reference needs the row id, so a unique placeholder stands for it
    until the flush."""
    dossier.reference = f"new-{id(dossier)}-{now.timestamp()}"[:32]
    session.add(dossier)
    session.flush()
    dossier.reference = f"{programme.id.split('-')[0][:3].upper()}-{paris_date(now).year}-{dossier.id:06d}"


def _create(*, uow: UnitOfWork, clock: Clock, actor: Actor, programme_id: str, company: dict,
            de_minimis_prior: list | None, documents: list | None, submit: bool,
            line: int | None = None, cites: int | None = None, project: dict | None = None) -> Outcome:
    now = clock.now()
    today = paris_date(now)
    programme = uow.catalogue.latest(programme_id)
    line_number = _line_number(programme, line)
    shape = programme.line(line_number).shape
    facts = CompanyFacts.parse(company)
    if actor.siren is not None and actor.siren != facts.siren:
        raise NotAllowed("Vous ne pouvez déposer une candidature que pour votre entreprise.", field="company.siren")
    if actor.role != "applicant":
        raise NotAllowed(f"Le rôle « {actor.role} » ne dépose pas de candidature.", field="as")
    prior = _parse_prior_aids(de_minimis_prior)
    kinds = list(programme.documents.candidacy) if documents is None else (
        _list_of_kinds(documents, "documents") if documents else [])
    session = uow.session
    cites_id = _cited(session, programme, line_number, facts.siren, cites)
    dossier = m.Dossier(
        reference="", programme_id=programme.id, programme_version=programme.version, status="draft",
        company_facts=facts.as_dict(), quotes={}, paid_total=ZERO, recovered_total=ZERO,
        submitted_at=now, updated_at=now, line=line_number, cites_id=cites_id,
    )
    if submit:
        # Refused here, nothing has been added to the session yet.
        _move(dossier, "submit_candidacy", actor, {"window_open": _window_open(programme, today)}, shape)
        call = programme.call_on(today)
        dossier.call_code = call.code if call else None
    company_row = session.scalar(_COMPANY_BY_SIREN, {"siren": facts.siren})
    if company_row is None:
        company_row = m.Company(siren=facts.siren, name=facts.name, email=facts.email, created_at=now)
        session.add(company_row)
    else:
        company_row.name = facts.name
        company_row.email = facts.email or company_row.email
    dossier.company = company_row
    insert_dossier(session, dossier, programme, now)
    for aid in prior:
        session.add(m.DeMinimisAid(siren=facts.siren, dossier_id=dossier.id, source="attestation",
                                   granted_on=aid.granted_on, amount=aid.amount))
    docs = [_store_document(session, uow, dossier=dossier, kind=kind, filename=PLACEHOLDER_NAMES.get(kind, f"{kind}.txt"),
                            content=_placeholder_content(dossier.reference, kind, actor, now),
                            content_type="text/plain", actor=actor, now=now) for kind in kinds]
    session.flush()
    append_event(session, dossier=dossier, at=now, actor=actor.name, role=actor.role,
                 command="submit_candidacy" if submit else "start_candidacy", state_before="draft",
                 data={"programme": programme.key, "programme_hash": programme.content_hash,
                       "company": facts.as_dict(), "line": line_number, "call": dossier.call_code,
                       "cites": cites_id,
                       "de_minimis_prior": [{"granted_on": a.granted_on.isoformat(), "amount": str(a.amount)} for a in prior],
                       "documents": [{"kind": d.kind, "version": d.version, "sha256": d.sha256,
                                      "filename": d.filename, "size": d.size} for d in docs],
                       **({"project": project} if project else {})})
    if submit:
        enqueue(session, kind="candidacy_received", dedupe_key=f"{dossier.reference}:candidacy_received",
                now=now, recipient=applicant_recipient(dossier),
                context={"dossier": dossier_context(dossier, programme), "submitted_at": now.isoformat(),
                         **missing_pieces(programme, kinds, today)},
                dossier=dossier)
    _commit(uow, dossier.id)
    return Outcome(dossier.id, dossier.reference, dossier.status, dossier.version)


def _parse_prior_aids(raw) -> list[PriorAid]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput("de_minimis_prior", "de_minimis_prior : une liste {granted_on, amount} est attendue.")
    out = []
    for i, item in enumerate(raw):
        f = f"de_minimis_prior[{i}]"
        if not isinstance(item, dict) or "granted_on" not in item or "amount" not in item:
            raise InvalidInput(f, f"{f} : {{granted_on, amount}} attendu.")
        try:
            granted = date.fromisoformat(str(item["granted_on"]))
        except ValueError:
            raise InvalidInput(f"{f}.granted_on", f"{f}.granted_on : date AAAA-MM-JJ attendue.") from None
        out.append(PriorAid(granted, parse_amount(item["amount"], f"{f}.amount")))
    return out
