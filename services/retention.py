"""RGPD (docs/data-protection.md): storage limitation and the right of access.

A closed dossier (a final state of `states.lifecycle`) keeps the personal data it holds for its
programme's retention (`[retention] years_after_closure` of the programme file), counted from the
Europe/Paris day of the event that closed it. From the day it is due, `run_retention`:

1. anonymises the dossier in ONE unit of work — its events' personal fields (company-side
   actors, e-mail addresses and the like, pieces' file names), the dossier's company facts, its
   pieces' metadata, its letters (addressee and body), the company's e-mail and the company's
   contact accounts once none of the company's dossiers keeps them — and appends, in the same
   transaction, the `anonymise` event: the rule, the figure, the counts, and for each event it
   changed the hash of the event as it now reads (the *redaction manifest*). The events keep
   their original hashes, so the chain still links; `services.audit.verify` accepts a changed
   event whose content gives the hash the manifest records, and the manifest is itself covered by
   the chain (the `anonymise` event's hash). A dossier whose history does not verify is refused
   (anonymising it would launder the damage);
2. then, after the commit, deletes the pieces' files from the storage and marks them deleted.
   A crash between the two leaves files whose rows say they are not yet deleted: the next run
   deletes them (`purge_files`). A file still referenced by a piece of a dossier not anonymised
   (the storage is content-addressed: two dossiers may share one) is kept.

Running twice changes nothing the second time: an anonymised dossier is not a candidate again.

`export_person` gathers everything held about one e-mail address (RGPD art. 15)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from db import models as m
from db import models_auth as ma
from db import models_oidc as mo
from programmes import Retention
from rules.calendar import add_months, paris_date
from rules.errors import RuleViolation
from services.audit.records import row_instant
from services.events import append_event, hash_of
from states.lifecycle import FINAL_STATES

ANONYMISED = "[anonymisé]"
ANONYMISED_BODY = "[Contenu supprimé : durée de conservation échue (RGPD, art. 5.1.e).]"
RETENTION_ACTOR = "Usine (durée de conservation)"
RULE = "rgpd_retention"
# The company side's people: their names are personal data. The Region's agents (officer, head,
# finance) sign administrative acts whose author stays named (CRPA art. L212-1): kept.
PERSONAL_ROLES = frozenset({"applicant", "consultant"})
# Keys of event data, company facts and letter contexts whose values are a natural person's.
PERSONAL_KEYS = frozenset({
    "email", "contact", "contact_name", "contact_email", "contact_phone", "phone", "telephone", "mobile",
    "address", "postal_address", "first_name", "last_name", "full_name", "recipient", "recipient_name",
    "recipient_address", "signatory", "signatory_name",
})

_EMPTIED_KEYS = frozenset(k for k in PERSONAL_KEYS if any(w in k for w in ("email", "phone", "mobile", "address")))


class HistoryNotVerified(RuleViolation):
    def __init__(self, reference: str, problems: int):
        super().__init__("retention_history_not_verified",
                         f"Dossier {reference} : son historique ne se vérifie pas ({problems} anomalie(s)) ; "
                         f"il n'est pas anonymisé (l'anonymiser masquerait l'altération). Lancez « usine audit "
                         f"verify --dossier {reference} ».")


# -- what is redacted ----------------------------------------------------------------------------

def anonymised_filename(kind: str, version: int | None, filename: str | None) -> str | None:
    """A piece's file name without what a person may have put in it: `<kind>-v<version>.<ext>`.
    A name Usine itself gave (`kbis.txt`) holds nothing personal and is kept (idempotent)."""
    if filename is None:
        return None
    path = PurePath(filename)
    stem, suffix = path.stem, path.suffix.lower()[:10]
    if stem in (kind, f"{kind}-v{version or 1}"):
        return filename
    return f"{kind}-v{version or 1}{suffix}"


def redact(value):
    """`value` (JSON data) with every personal value replaced by the marker, and every piece's
    file name anonymised. Already-redacted data come back equal (idempotent)."""
    if isinstance(value, list):
        return [redact(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        if key in PERSONAL_KEYS and v not in (None, "", [], {}):
            # An address or a number becomes "none" (the rules replayed over the facts validate
            # their format); a name becomes the marker.
            out[key] = None if key in _EMPTIED_KEYS else ANONYMISED
        elif key == "filename" and isinstance(v, str) and isinstance(value.get("kind"), str):
            out[key] = anonymised_filename(value["kind"], value.get("version"), v)
        else:
            out[key] = redact(v)
    return out


def redact_actor(actor: str, role: str) -> str:
    return ANONYMISED if role in PERSONAL_ROLES else actor


# -- which dossiers are due ----------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    dossier_id: int
    reference: str
    programme: str  # "id@vN"
    programme_name: str
    status: str
    closed_at: datetime
    years: int
    due_on: object  # date


def retention_of(catalogue, programme_id: str, version: int) -> tuple[Retention, str]:
    try:
        p = catalogue.get(programme_id, version)
        return p.retention, p.name
    except RuleViolation:  # a programme no longer in the catalogue: the default figure
        return Retention(), programme_id


def due_dossiers(session, catalogue, now: datetime) -> list[Candidate]:
    """The closed dossiers, not yet anonymised, whose retention is over on `now`'s Paris day.
    Closure: the first event that put the dossier in a final state (the evidence, not a column)."""
    # Correlated: read through the events' (dossier, seq) index for the final, not yet anonymised
    # dossiers only (no scan of the whole events table).
    closed_at = (select(func.min(m.Event.at)).where(m.Event.dossier_id == m.Dossier.id,
                                                    m.Event.state_after.in_(sorted(FINAL_STATES)))
                 .correlate(m.Dossier).scalar_subquery())
    rows = session.execute(
        select(m.Dossier.id, m.Dossier.reference, m.Dossier.programme_id, m.Dossier.programme_version,
               m.Dossier.status, closed_at.label("closed_at"))
        .where(m.Dossier.status.in_(sorted(FINAL_STATES)), m.Dossier.anonymised_at.is_(None))
        .order_by(m.Dossier.id))
    today = paris_date(now)
    out = []
    for r in rows:
        if r.closed_at is None:  # no closing event: the history is damaged; verify names it
            continue
        retention, name = retention_of(catalogue, r.programme_id, r.programme_version)
        closed_at = row_instant(r.closed_at)  # an aggregate: the driver's raw value (SQLite: text)
        due_on = add_months(paris_date(closed_at), 12 * retention.years_after_closure)
        if today >= due_on:
            out.append(Candidate(r.id, r.reference, f"{r.programme_id}@v{r.programme_version}", name, r.status,
                                 closed_at, retention.years_after_closure, due_on))
    return out


# -- one dossier, one unit of work ---------------------------------------------------------------

def _dossiers_left(session, *, company_id: int | None = None, siren: str | None = None) -> int:
    """Dossiers of a company not anonymised (the flushed current one excluded by its column)."""
    q = select(func.count()).select_from(m.Dossier).where(m.Dossier.anonymised_at.is_(None))
    if company_id is not None:
        q = q.where(m.Dossier.company_id == company_id)
    else:
        q = q.join(m.Company, m.Company.id == m.Dossier.company_id).where(m.Company.siren == siren)
    return session.scalar(q)


def anonymise_dossier(uow, candidate: Candidate, now: datetime) -> dict | None:
    """Anonymise one due dossier and write its `anonymise` event, in the caller's unit of work
    (committed here). None when it was anonymised already (by a concurrent run)."""
    from services.audit.records import load_events
    from services.audit.verify import verify_events

    s = uow.session
    dossier = s.get(m.Dossier, candidate.dossier_id)
    if dossier is None or dossier.anonymised_at is not None:
        return None
    records = load_events(s, dossier.id)
    verification = verify_events(dossier, records)
    if not verification.ok:
        raise HistoryNotVerified(dossier.reference, len(verification.problems))
    counts = {"events": 0, "documents": 0, "letters": 0, "accounts": 0, "company_email": 0}
    manifest: dict[str, str] = {}
    events = list(s.scalars(select(m.Event).where(m.Event.dossier_id == dossier.id).order_by(m.Event.seq)))
    for ev in events:
        actor, data = redact_actor(ev.actor, ev.role), redact(ev.data)
        if actor != ev.actor or data != ev.data:
            ev.actor, ev.data = actor, data
            manifest[str(ev.seq)] = hash_of(ev)
            counts["events"] += 1
    facts = redact(dossier.company_facts)
    if facts != dossier.company_facts:
        dossier.company_facts = facts
    for doc in s.scalars(select(m.Document).where(m.Document.dossier_id == dossier.id)):
        doc.filename = anonymised_filename(doc.kind, doc.version, doc.filename)
        doc.uploaded_by = redact_actor(doc.uploaded_by, doc.uploaded_role)
        counts["documents"] += 1
    for note in s.scalars(select(m.Notification).where(m.Notification.dossier_id == dossier.id)):
        note.recipient_name = ANONYMISED
        note.recipient_address = ANONYMISED
        note.body_text = ANONYMISED_BODY
        note.body_html = f"<p>{ANONYMISED_BODY}</p>"
        note.context = {}
        if note.status == "queued":  # never sent, and never to be: its addressee is gone
            note.status = "dead"
            note.last_error = "anonymisé : durée de conservation échue"
        counts["letters"] += 1
    from services.messages import anonymise_notes

    notes = anonymise_notes(s, dossier.id)  # messages' and annotations' texts, attachments' names
    if notes:
        counts["messages"] = notes
    dossier.anonymised_at = now
    dossier.updated_at = now
    s.flush()
    company = s.get(m.Company, dossier.company_id)
    if company is not None and _dossiers_left(s, company_id=company.id) == 0:
        if company.email:
            company.email = None
            counts["company_email"] = 1
        if _dossiers_left(s, siren=company.siren) == 0:
            counts["accounts"] = _anonymise_accounts(s, company.siren, now)
    append_event(s, dossier=dossier, at=now, actor=RETENTION_ACTOR, role="system", command="anonymise",
                 state_before=dossier.status,
                 data={"rule": RULE, "years_after_closure": candidate.years,
                       "closed_at": candidate.closed_at.isoformat(), "due_on": candidate.due_on.isoformat(),
                       "counts": counts, "redacted": manifest})
    uow.commit()
    return counts


def _anonymise_accounts(s, siren: str, now: datetime) -> int:
    """The company's contact accounts (applicants of that SIREN): disabled, name and login
    replaced, their sessions and provider identities removed."""
    users = list(s.scalars(select(ma.User).where(ma.User.siren == siren, ma.User.role == "applicant",
                                                 ma.User.display_name != ANONYMISED)))
    for user in users:
        s.execute(ma.WebSession.__table__.delete().where(ma.WebSession.username == user.username))
        s.execute(mo.OidcIdentity.__table__.delete().where(mo.OidcIdentity.username == user.username))
        user.username = f"anonymise-{user.id}"
        user.display_name = ANONYMISED
        user.password_hash = "!"  # no password gives it
        user.active = False
        user.disabled_at = user.disabled_at or now
        user.token_version = (user.token_version or 0) + 1
    return len(users)


# -- the files, after the commit -----------------------------------------------------------------

def purge_files(uow_factory, now: datetime) -> int:
    """Delete the files of anonymised dossiers' pieces not yet deleted, then mark them. Also what
    a run after a crash does for the files its predecessor committed but did not delete."""
    with uow_factory() as uow:
        s = uow.session
        pending = list(s.execute(
            select(m.Document.id, m.Document.storage_key).join(m.Dossier, m.Dossier.id == m.Document.dossier_id)
            .where(m.Dossier.anonymised_at.is_not(None), m.Document.content_deleted_at.is_(None))))
        if not pending:
            return 0
        keys = {r.storage_key for r in pending}
        # Content-addressed: a file another, non-anonymised dossier's piece points at is kept.
        shared = set(s.scalars(
            select(m.Document.storage_key).join(m.Dossier, m.Dossier.id == m.Document.dossier_id)
            .where(m.Dossier.anonymised_at.is_(None), m.Document.storage_key.in_(keys))))
        deleted = 0
        for key in sorted(keys - shared):
            if uow.storage.delete(key):
                deleted += 1
        s.execute(m.Document.__table__.update().where(m.Document.id.in_([r.id for r in pending]))
                  .values(content_deleted_at=now))
        uow.commit()
    return deleted


# -- the run -------------------------------------------------------------------------------------

@dataclass
class RetentionReport:
    dry_run: bool
    on: object  # the Paris day of the run
    anonymised: list[dict] = field(default_factory=list)  # {reference, programme, programme_name, ...}
    refused: list[dict] = field(default_factory=list)
    pieces: int = 0           # pieces' files deleted (or to delete, dry run)
    pending_files: int = 0    # pieces left by an interrupted earlier run, their files deleted now
    files_deleted: int = 0    # files removed from the storage (fewer than pieces when shared)

    def by_programme(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.anonymised:
            out[d["programme_name"]] = out.get(d["programme_name"], 0) + 1
        return dict(sorted(out.items()))

    def as_dict(self) -> dict:
        return {"dry_run": self.dry_run, "on": self.on.isoformat(), "anonymised": self.anonymised,
                "by_programme": self.by_programme(), "refused": self.refused, "pieces_deleted": self.pieces,
                "pending_pieces": self.pending_files, "files_deleted": self.files_deleted}

    def lines(self) -> list[str]:
        """The report in French."""
        from services.wording import fr_day

        verb = "seraient anonymisés" if self.dry_run else "anonymisés"
        head = (f"Simulation — rien n'a été écrit. Durée de conservation au {fr_day(self.on)} :" if self.dry_run
                else f"Durée de conservation au {fr_day(self.on)} :")
        out = [head]
        if not self.anonymised:
            out.append("  aucun dossier clôturé n'a dépassé sa durée de conservation.")
        for name, n in self.by_programme().items():
            out.append(f"  {name} : {n} dossier(s) {verb}")
        for d in self.anonymised:
            out.append(f"    {d['reference']} — clos le {fr_day(d['closed_on'])}, conservation {d['years']} ans, "
                       f"échue le {fr_day(d['due_on'])}")
        pieces = "pièce(s) dont le fichier serait supprimé" if self.dry_run else "pièce(s) : fichier supprimé"
        out.append(f"  {self.pieces} {pieces}")
        if self.pending_files:
            left = "à supprimer" if self.dry_run else "supprimé(s)"
            out.append(f"  {self.pending_files} pièce(s) laissée(s) par une exécution interrompue : fichier {left}")
        for r in self.refused:
            out.append(f"  refusé : {r['message']}")
        return out


def _pending_pieces(session, dossier_ids=None) -> int:
    """Pieces whose file is not deleted yet: of the given dossiers, or (None) of dossiers already
    anonymised (files an interrupted run committed but did not delete)."""
    q = select(func.count()).select_from(m.Document).where(m.Document.content_deleted_at.is_(None))
    if dossier_ids is None:
        q = q.join(m.Dossier, m.Dossier.id == m.Document.dossier_id).where(m.Dossier.anonymised_at.is_not(None))
    elif not dossier_ids:
        return 0
    else:
        q = q.where(m.Document.dossier_id.in_(dossier_ids))
    return session.scalar(q)


def run_retention(uow_factory, clock, *, dry_run: bool = False) -> RetentionReport:
    """Anonymise every due dossier (one unit of work each), then delete their pieces' files.
    `dry_run`: what would be done, nothing written (no transaction commits, no file deleted)."""
    now = clock.now()
    report = RetentionReport(dry_run=dry_run, on=paris_date(now))
    with uow_factory() as uow:
        candidates = due_dossiers(uow.session, uow.catalogue, now)
        report.pending_files = _pending_pieces(uow.session)
        if dry_run:
            report.pieces = _pending_pieces(uow.session, [c.dossier_id for c in candidates])
    for c in candidates:
        entry = {"reference": c.reference, "programme": c.programme, "programme_name": c.programme_name,
                 "closed_on": paris_date(c.closed_at).isoformat(), "years": c.years, "due_on": c.due_on.isoformat()}
        if dry_run:
            report.anonymised.append(entry)
            continue
        try:
            with uow_factory() as uow:
                counts = anonymise_dossier(uow, c, now)
        except HistoryNotVerified as exc:
            report.refused.append({"reference": c.reference, "rule": exc.rule, "message": exc.message})
            continue
        except (StaleDataError, IntegrityError):  # changed meanwhile (another run?): the next run sees it again
            report.refused.append({"reference": c.reference, "rule": "retention_concurrent_change",
                                   "message": f"Dossier {c.reference} modifié pendant l'anonymisation : repris à la "
                                              f"prochaine exécution."})
            continue
        if counts is not None:
            report.anonymised.append({**entry, "counts": counts})
            report.pieces += counts["documents"]
    if not dry_run:
        from services.messages import purge_attachment_files

        report.files_deleted = purge_files(uow_factory, now) + purge_attachment_files(uow_factory, now)
    return report


# -- the right of access (RGPD art. 15) -----------------------------------------------------------

def export_person(session, email: str, *, names: tuple[str, ...] = (), now: datetime | None = None) -> dict:
    """Everything Usine holds about the person of this e-mail address (and of these display
    names, for someone who acted without an account): accounts, companies they are the contact
    of, dossiers (as contact or actor), events they did, letters sent to them, pieces they
    uploaded (metadata; the content is given on request from the storage). No password hash,
    no session token. Read only."""
    from services.audit.records import iso
    from states.lifecycle import STATE_LABELS

    address = email.strip().lower()
    identities = list(session.scalars(select(mo.OidcIdentity).where(func.lower(mo.OidcIdentity.email) == address)))
    usernames = {i.username for i in identities if i.username} | {address}
    companies = list(session.scalars(select(m.Company).where(func.lower(m.Company.email) == address)
                                     .order_by(m.Company.siren)))
    # An applicant's account carries no e-mail address: the company's contact address is the
    # person's, so the accounts of that company are listed (and what they did).
    sirens = sorted({c.siren for c in companies})
    users = list(session.scalars(select(ma.User).where(
        func.lower(ma.User.username).in_(sorted(usernames))
        | ((ma.User.role == "applicant") & ma.User.siren.in_(sirens))).order_by(ma.User.username)))
    display = sorted({u.display_name for u in users} | {i.display_name for i in identities if i.display_name}
                     | {n for n in names if n})
    letters = list(session.scalars(select(m.Notification).where(func.lower(m.Notification.recipient_address) == address)
                                   .order_by(m.Notification.created_at, m.Notification.id)))
    # An account acts under its username (events, pieces); a person without one under a name.
    acting = sorted(set(display) | {u.username for u in users})
    events = list(session.scalars(select(m.Event).where(m.Event.actor.in_(acting)).order_by(m.Event.at, m.Event.id))) \
        if acting else []
    pieces = list(session.scalars(select(m.Document).where(m.Document.uploaded_by.in_(acting))
                                  .order_by(m.Document.uploaded_at, m.Document.id))) if acting else []
    why: dict[int, set[str]] = {}
    for c in companies:
        for did in session.scalars(select(m.Dossier.id).where(m.Dossier.company_id == c.id)):
            why.setdefault(did, set()).add("contact de l'entreprise")
    for u in users:
        if u.role == "applicant" and u.siren:
            for did in session.scalars(select(m.Dossier.id).join(m.Company).where(m.Company.siren == u.siren)):
                why.setdefault(did, set()).add("compte de l'entreprise")
    for n in letters:
        if n.dossier_id:
            why.setdefault(n.dossier_id, set()).add("destinataire de courriers")
    for e in events:
        why.setdefault(e.dossier_id, set()).add("auteur d'actions")
    for d in pieces:
        why.setdefault(d.dossier_id, set()).add("dépôt de pièces")
    from services.messages import messages_written_by

    written = messages_written_by(session, acting)
    for x in written:
        why.setdefault(x.dossier_id, set()).add("auteur de messages")
    dossiers = {d.id: d for d in session.scalars(select(m.Dossier).where(m.Dossier.id.in_(sorted(why))))} if why else {}

    def ref(did):
        return dossiers[did].reference if did in dossiers else None

    return {
        "email": address,
        "generated_at": iso(now),
        "display_names": display,
        "accounts": [{"username": u.username, "display_name": u.display_name, "role": u.role, "siren": u.siren,
                      "consultant": u.consultant, "regions": u.regions, "active": u.active,
                      "created_at": iso(u.created_at), "disabled_at": iso(u.disabled_at),
                      "password_changed_at": iso(u.password_changed_at)} for u in users],
        "sign_in_identities": [{"email": i.email, "username": i.username, "role": i.role, "display_name": i.display_name,
                                "issuer": i.issuer, "first_sign_in_at": iso(i.first_sign_in_at),
                                "last_sign_in_at": iso(i.last_sign_in_at)} for i in identities],
        "companies": [{"siren": c.siren, "name": c.name, "email": c.email} for c in companies],
        "dossiers": [{"reference": d.reference, "programme": f"{d.programme_id}@v{d.programme_version}",
                      "status": d.status, "status_label": STATE_LABELS.get(d.status, d.status),
                      "company": (d.company_facts or {}).get("name"), "why": sorted(why[d.id]),
                      "closed_at": iso(d.closed_at), "anonymised_at": iso(d.anonymised_at)}
                     for d in sorted(dossiers.values(), key=lambda d: d.reference)],
        "events": [{"dossier": ref(e.dossier_id), "seq": e.seq, "at": iso(e.at), "command": e.command,
                    "role": e.role, "actor": e.actor, "reason": e.reason} for e in events],
        "letters": [{"dossier": ref(n.dossier_id), "kind": n.kind, "subject": n.subject,
                     "recipient_name": n.recipient_name, "recipient_address": n.recipient_address,
                     "status": n.status, "created_at": iso(n.created_at), "sent_at": iso(n.sent_at),
                     "body_text": n.body_text} for n in letters],
        "pieces": [{"dossier": ref(d.dossier_id), "kind": d.kind, "version": d.version, "filename": d.filename,
                    "content_type": d.content_type, "size": d.size, "sha256": d.sha256,
                    "uploaded_by": d.uploaded_by, "uploaded_at": iso(d.uploaded_at),
                    "file_deleted_at": iso(d.content_deleted_at)} for d in pieces],
        "messages": [{"dossier": ref(x.dossier_id), "thread": x.thread, "sent_at": iso(x.sent_at), "body": x.body}
                     for x in written],
    }


def person_export_lines(export: dict) -> list[str]:
    """The export as a French text a person can read (no internal ids)."""
    from services.wording import fr_instant

    out = [f"Données détenues par Usine pour « {export['email']} »"
           + (f" (état au {fr_instant(export['generated_at'])})" if export.get("generated_at") else "")]
    if export["display_names"]:
        out.append("Noms sous lesquels la personne apparaît : " + ", ".join(export["display_names"]))
    sections = (
        ("Comptes", export["accounts"], lambda a: f"{a['display_name']} — identifiant {a['username']}, rôle {a['role']}"
         + (f", entreprise SIREN {a['siren']}" if a["siren"] else "") + (", actif" if a["active"] else ", désactivé")
         + f", créé le {fr_instant(a['created_at'])}"),
        ("Connexions par fournisseur d'identité", export["sign_in_identities"],
         lambda i: f"{i['email']} — première connexion {fr_instant(i['first_sign_in_at'])}, "
                   f"dernière {fr_instant(i['last_sign_in_at'])}"),
        ("Entreprises dont elle est le contact", export["companies"],
         lambda c: f"{c['name']} (SIREN {c['siren']}), adresse {c['email']}"),
        ("Dossiers", export["dossiers"], lambda d: f"{d['reference']} — {d['company'] or '—'}, {d['status_label']} ("
         + ", ".join(d["why"]) + ")" + (f", anonymisé le {fr_instant(d['anonymised_at'])}" if d["anonymised_at"] else "")),
        ("Actions enregistrées", export["events"],
         lambda e: f"{fr_instant(e['at'])} — {e['dossier']} n°{e['seq']} : {e['command']} (rôle {e['role']})"),
        ("Courriers envoyés", export["letters"],
         lambda n: f"{fr_instant(n['created_at'])} — {n['dossier'] or '—'} : {n['subject']} ({n['status']})"),
        ("Pièces déposées", export["pieces"],
         lambda p: f"{fr_instant(p['uploaded_at'])} — {p['dossier']} : {p['kind']} v{p['version']}, {p['filename']}, "
                   f"{p['size']} octets" + (" (fichier supprimé)" if p["file_deleted_at"] else "")),
    )
    sections += (("Messages écrits", export.get("messages", []),
                  lambda x: f"{fr_instant(x['sent_at'])} — {x['dossier']} : {x['body'][:200]}"),)
    for title, rows, line in sections:
        out.append(f"{title} : {len(rows)}")
        out += [f"  {line(r)}" for r in rows]
    return out
