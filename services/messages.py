"""The dossier's messages, the agents' private annotations and the expert opinions (issue 19).

- **Messages**: two threads per dossier — the agents of the dossier's scope with the company
  (`applicant`), and with the dossier's consultant (`consultant`). A message may carry
  attachments (the document rules: `MAX_UPLOAD_BYTES`, the type read from the content, the
  SHA-256 kept). Each one is an event `send_message` of the dossier's history, carrying the
  SHA-256 of its text and of each attachment (the text stays in `dossier_messages`), and queues
  an e-mail notice to the other side (`message_received`, the text is not in the mail). The
  receiving side's read mark is on the message (`read_at`): reading is not an event.
- **Annotations**: agents only (`annotate`), never shown to the company or the consultant.
- **Expert opinions**: an officer or head invites someone by e-mail (`invite_expert`); the link
  is signed (itsdangerous, a key derived from the service secret), expires
  `expert_link_days` after the invitation (service clock) and serves once; the expert sees a
  read-only summary of that one dossier (no RIB, no tax or social certificates) and gives an
  opinion (`give_opinion`).

Each use case is one unit of work; a refusal raises a `RuleViolation` naming its field and rule
before anything is written, and an attachment's file is written to the storage only once every
check passed (and removed again if the commit fails)."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select, update

from db import models as m
from db import models_messages as mm
from rules.errors import InvalidInput, NotAllowed, RuleViolation
from rules.text import check_text
from services.bulk import officer_recipient
from services.clock import Clock
from services.commands import Actor
from services.commands.base import _Command
from services.outbox import applicant_recipient, dossier_context, enqueue
from services.people import display_name, display_names
from services.storage import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB
from services.uow import UnitOfWork

THREADS = ("applicant", "consultant")
THREAD_LABELS = {"applicant": "l'entreprise", "consultant": "le prestataire référencé"}
SIDE_LABELS = {"agent": "la Région", "applicant": "l'entreprise", "consultant": "le prestataire référencé"}
# Who writes for the Region on a dossier of its scope: the agents but the auditor, who reads only
# (hence not services.oidc.AGENT_ROLES, the agents an identity provider signs in, auditor included).
REGION_WRITER_ROLES = ("officer", "head", "finance", "admin")
INVITER_ROLES = ("officer", "head")
# The commands of this module: events of the history that change no state and no amount.
NOTE_COMMANDS = ("send_message", "annotate", "invite_expert", "give_opinion")
# What only the agents (and the auditor) see of a history.
AGENT_ONLY_COMMANDS = ("annotate", "invite_expert", "give_opinion")
OPINIONS = {"favourable": "favorable", "reserved": "réservé", "unfavourable": "défavorable"}
EXPERT_KINDS = {"agent": "agent de la Région", "outside": "expert extérieur"}
MAX_TEXT = 5000
MAX_ATTACHMENTS = 5
# Pieces the expert never sees: bank details, tax and social certificates.
HIDDEN_FROM_EXPERT = ("rib", "tax_certificate", "social_certificate")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_SALT = "usine-expert-opinion-v1"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes


def side_of(actor: Actor) -> str | None:
    """agent, applicant or consultant; None for who only reads (an auditor) or is no party."""
    if actor.role in REGION_WRITER_ROLES:
        return "agent"
    if actor.role in ("applicant", "consultant"):
        return actor.role
    return None


def threads_of(actor: Actor) -> tuple[str, ...]:
    """The threads a person reads: the agents and the auditor both, an outside party its own."""
    if actor.role in ("applicant", "consultant"):
        return (actor.role,)
    if actor.role in (*REGION_WRITER_ROLES, "auditor"):
        return THREADS
    return ()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _text(raw, field: str, what: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(field, f"{field} : {what} est vide — écrivez un texte.")
    if len(raw) > MAX_TEXT:
        raise InvalidInput(field, f"{field} : {what} dépasse {MAX_TEXT:,} caractères.".replace(",", "\u00a0"))
    return check_text(raw, field, multiline=True).strip()


def _checked_attachments(attachments: Iterable[Attachment]) -> list[dict]:
    """Every attachment checked before anything is written: size, emptiness, type read from the
    content (the documents' rule, `services.files.sniff`), a harmless file name."""
    from services.files import safe_filename, sniff  # the one place the accepted types are read

    items = list(attachments or ())
    if len(items) > MAX_ATTACHMENTS:
        raise InvalidInput("attachments", f"attachments : {MAX_ATTACHMENTS} pièces jointes au plus par message.")
    out = []
    for i, a in enumerate(items):
        field = f"attachments[{i}]"
        name = a.filename or "piece-jointe"
        if len(a.content) > MAX_UPLOAD_BYTES:
            raise RuleViolation("file_too_large", f"{field} : la pièce jointe « {name} » dépasse la taille maximale "
                                f"des fichiers ({MAX_UPLOAD_MB} Mo au plus).", field="attachments")
        if not a.content:
            raise InvalidInput("attachments", f"{field} : la pièce jointe « {name} » est vide.")
        content_type = sniff(a.content)
        if content_type is None:
            raise RuleViolation("file_type", f"{field} : la pièce jointe « {name} » n'est pas d'un type accepté "
                                "(PDF, PNG, JPEG, ODT ou DOCX, reconnu d'après son contenu).", field="attachments")
        filename = safe_filename(name, content_type, "piece-jointe")
        out.append({"filename": filename, "content": a.content, "content_type": content_type,
                    "size": len(a.content), "sha256": hashlib.sha256(a.content).hexdigest()})
    return out


def _writable(cmd: _Command) -> None:
    if cmd.dossier.anonymised_at is not None:
        raise NotAllowed("Ce dossier est anonymisé (durée de conservation échue) : il ne reçoit plus de message.")


def consultant_recipient(name: str) -> dict:
    """A consultant as named on the dossier; like the officers, no address is kept for it yet:
    the name as `prenom.nom` at the consultants' domain."""
    address = officer_recipient(name)["email"].split("@")[0]
    return {"role": "consultant", "name": name, "email": f"{address}@prestataires.usine.invalid"}


def _store_files(uow: UnitOfWork, files: list[dict]) -> list[str]:
    """Write the files; the keys written that were not there before (to remove on a failed commit)."""
    new = []
    for f in files:
        exists = getattr(uow.storage, "exists", None)
        before = exists(f"{f['sha256'][:2]}/{f['sha256']}") if exists else True
        key, _ = uow.storage.put(f["content"])
        f["storage_key"] = key
        if not before:
            new.append(key)
    return new


def _commit_with_files(uow: UnitOfWork, new_keys: list[str]) -> None:
    try:
        uow.commit()
    except BaseException:
        for key in new_keys:  # no orphan file for a message that was not written
            uow.storage.delete(key)
        raise


# -- messages ---------------------------------------------------------------------------------

def send_message(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, body,
                 thread: str | None = None, attachments: Iterable[Attachment] = ()) -> dict:
    side = side_of(actor)
    if side is None:
        raise NotAllowed(f"Le rôle « {actor.role} » consulte les messages : il n'en écrit pas.", field="as")
    if side == "agent":
        if thread not in THREADS:
            raise InvalidInput("thread", "thread : « applicant » (l'entreprise) ou « consultant » (le prestataire).")
    elif thread not in (None, side):
        raise NotAllowed("Vous n'écrivez que dans votre propre échange avec la Région.", field="thread")
    else:
        thread = side
    text = _text(body, "body", "le message")
    files = _checked_attachments(attachments)
    cmd = _Command(uow, clock, actor, dossier_id, None)
    _writable(cmd)
    d = cmd.dossier
    if thread == "consultant" and not d.consultant:
        raise InvalidInput("thread", "thread : ce dossier n'a pas de prestataire référencé.")
    message = mm.DossierMessage(dossier_id=d.id, thread=thread, author=actor.name, author_role=actor.role,
                                author_side=side, body=text, body_sha256=sha256_text(text), sent_at=cmd.now,
                                event_seq=0)
    cmd.session.add(message)
    cmd.session.flush()
    event = cmd.record("send_message", {
        "message_id": message.id, "thread": thread, "from": side, "body_sha256": message.body_sha256,
        "attachments": [{"filename": f["filename"], "size": f["size"], "sha256": f["sha256"]} for f in files]})
    message.event_seq = event["seq"]
    recipient = None
    if side != "agent":
        recipient = officer_recipient(d.officer) if d.officer else None
    elif thread == "applicant":
        recipient = applicant_recipient(d)
    else:
        recipient = consultant_recipient(d.consultant or "")
    if recipient is not None:
        enqueue(cmd.session, kind="message_received", dedupe_key=f"{d.reference}:message:{message.id}",
                now=cmd.now, recipient=recipient,
                context={"dossier": dossier_context(d, cmd.programme), "sender": SIDE_LABELS[side],
                         "attachments": len(files), "sent_at": cmd.now.isoformat()})
    # The files last, once everything else is staged: a refusal above leaves no file behind.
    new_keys = _store_files(uow, files)
    for f in files:
        cmd.session.add(mm.MessageAttachment(message_id=message.id, dossier_id=d.id, filename=f["filename"],
                                             content_type=f["content_type"], size=f["size"], sha256=f["sha256"],
                                             storage_key=f["storage_key"]))
    _commit_with_files(uow, new_keys)
    return {"message_id": message.id, "thread": thread, "dossier_id": d.id, "version": d.version,
            "attachments": [{k: f[k] for k in ("filename", "size", "sha256")} for f in files],
            "notified": recipient["email"] if recipient else None}


def _unread_clause(actor: Actor):
    side = side_of(actor)
    M = mm.DossierMessage
    if side == "agent":
        return (M.author_side != "agent") & M.read_at.is_(None)
    if side in THREADS:
        return (M.thread == side) & (M.author_side == "agent") & M.read_at.is_(None)
    return None


def mark_read(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int) -> int:
    """The receiving side has seen the messages sent to it: how many were marked. An auditor's
    reading marks nothing. Not an event (reading changes nothing of the dossier)."""
    clause = _unread_clause(actor)
    if clause is None:
        return 0
    M = mm.DossierMessage
    done = uow.session.execute(update(M).where(M.dossier_id == dossier_id, clause)
                               .values(read_at=clock.now(), read_by=actor.name)).rowcount
    uow.commit()
    return done or 0


def unread_counts(session, actor: Actor, dossier_ids: list[int]) -> dict[int, int]:
    """For each dossier, the messages sent to the user's side it has not read yet."""
    clause = _unread_clause(actor)
    if clause is None or not dossier_ids:
        return {}
    M = mm.DossierMessage
    rows = session.execute(select(M.dossier_id, func.count()).where(M.dossier_id.in_(dossier_ids), clause)
                           .group_by(M.dossier_id)).all()
    return {did: n for did, n in rows}


def messages_of(session, actor: Actor, dossier_id: int) -> list[dict]:
    """The messages the user may read, oldest first, each with its attachments."""
    threads = threads_of(actor)
    if not threads:
        return []
    M, A = mm.DossierMessage, mm.MessageAttachment
    rows = list(session.scalars(select(M).where(M.dossier_id == dossier_id, M.thread.in_(threads)).order_by(M.id)))
    files: dict[int, list] = {}
    if rows:
        for a in session.scalars(select(A).where(A.message_id.in_([r.id for r in rows])).order_by(A.id)):
            files.setdefault(a.message_id, []).append(a)
    side = side_of(actor)
    return [{"id": r.id, "thread": r.thread, "author": r.author, "author_role": r.author_role, "from": r.author_side,
             "body": r.body, "sent_at": r.sent_at, "read_at": r.read_at, "read_by": r.read_by,
             "unread": r.read_at is None and side is not None and r.author_side != side
             and (side == "agent" or r.thread == side),
             "attachments": [{"id": a.id, "filename": a.filename, "size": a.size, "sha256": a.sha256,
                              "content_type": a.content_type} for a in files.get(r.id, [])]} for r in rows]


def attachment_for(session, actor: Actor, dossier_id: int, attachment_id: int) -> tuple[mm.MessageAttachment, str] | None:
    """An attachment the user may read (its message in one of the user's threads), or None."""
    M, A = mm.DossierMessage, mm.MessageAttachment
    row = session.execute(select(A, M.thread).join(M, M.id == A.message_id)
                          .where(A.id == attachment_id, A.dossier_id == dossier_id)).first()
    if row is None or row[1] not in threads_of(actor):
        return None
    return row[0], row[1]


def visible_events(events: list[dict], actor: Actor) -> list[dict]:
    """A history as the user may see it: the company and the consultant never see the agents'
    annotations or the expert opinions, nor the other party's messages."""
    if actor.role not in ("applicant", "consultant"):
        return events
    return [e for e in events if e["command"] not in AGENT_ONLY_COMMANDS
            and not (e["command"] == "send_message" and (e.get("data") or {}).get("thread") != actor.role)]


# -- annotations ------------------------------------------------------------------------------

def annotate(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, body) -> dict:
    if actor.role not in REGION_WRITER_ROLES:
        raise NotAllowed("Les annotations sont réservées aux agents de la Région.", field="as")
    text = _text(body, "body", "l'annotation")
    cmd = _Command(uow, clock, actor, dossier_id, None)
    _writable(cmd)
    note = mm.DossierAnnotation(dossier_id=cmd.dossier.id, author=actor.name, author_role=actor.role, body=text,
                                body_sha256=sha256_text(text), written_at=cmd.now, event_seq=0)
    cmd.session.add(note)
    cmd.session.flush()
    note.event_seq = cmd.record("annotate", {"annotation_id": note.id, "body_sha256": note.body_sha256})["seq"]
    uow.commit()
    return {"annotation_id": note.id, "dossier_id": cmd.dossier.id, "version": cmd.dossier.version}


def annotations_of(session, actor: Actor, dossier_id: int) -> list[mm.DossierAnnotation]:
    if actor.role not in (*REGION_WRITER_ROLES, "auditor"):
        return []
    return list(session.scalars(select(mm.DossierAnnotation).where(mm.DossierAnnotation.dossier_id == dossier_id)
                                .order_by(mm.DossierAnnotation.id)))


# -- expert opinions --------------------------------------------------------------------------

def link_key(secret: str) -> str:
    """The key of the expert links, derived from the service secret (never the secret itself)."""
    return hmac.new(secret.encode("utf-8"), b"usine-expert-link-v1", hashlib.sha256).hexdigest()


def _serializer(key: str) -> URLSafeSerializer:
    return URLSafeSerializer(key, salt=_SALT)


class LinkRefused(RuleViolation):
    """An expert link that is tampered with, unknown, expired or already used."""

    def __init__(self, rule: str, message: str):
        super().__init__(rule, message, field="lien")


def invite_expert(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, name, email, kind: str = "outside",
                  key: str, link_base: str, days: int | None = None) -> dict:
    """Queue the e-mail carrying the signed link `link_base` + token; `days` defaults to the
    configured `expert_link_days`."""
    if actor.role not in INVITER_ROLES:
        raise NotAllowed("Seul un chargé de mission ou un chef de service sollicite l'avis d'un expert.", field="as")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput("expert_name", "expert_name : le nom de l'expert est obligatoire (200 caractères au plus).")
    name = check_text(name, "expert_name").strip()
    if not isinstance(email, str) or len(email) > 254 or not _EMAIL.match(email.strip()):
        raise InvalidInput("expert_email", "expert_email : une adresse électronique valide est attendue.")
    email = email.strip()
    if kind not in EXPERT_KINDS:
        raise InvalidInput("expert_kind", "expert_kind : « agent » ou « outside ».")
    if days is None:
        from services.config import get_settings

        days = get_settings().expert_link_days
    cmd = _Command(uow, clock, actor, dossier_id, None)
    _writable(cmd)
    invitation = mm.ExpertInvitation(dossier_id=cmd.dossier.id, nonce=secrets.token_urlsafe(24), expert_name=name,
                                     expert_email=email, expert_kind=kind, invited_by=actor.name,
                                     invited_at=cmd.now, expires_at=cmd.now + timedelta(days=days))
    cmd.session.add(invitation)
    cmd.session.flush()
    cmd.record("invite_expert", {"invitation_id": invitation.id, "expert": name, "kind": kind,
                                 "expires_at": invitation.expires_at.isoformat()})
    token = _serializer(key).dumps({"i": invitation.id, "n": invitation.nonce})
    link = link_base.rstrip("/") + "/" + token
    enqueue(cmd.session, kind="expert_invitation", dedupe_key=f"{cmd.dossier.reference}:expert:{invitation.id}",
            now=cmd.now, recipient={"role": "expert", "name": name, "email": email},
            context={"dossier": dossier_context(cmd.dossier, cmd.programme), "link": link,
                     "expires_at": invitation.expires_at.isoformat(),
                     "invited_by": display_name(cmd.session, actor.name)})
    uow.commit()
    return {"invitation_id": invitation.id, "link": link, "expires_at": invitation.expires_at}


def _invitation(uow: UnitOfWork, clock: Clock, key: str, token: str) -> mm.ExpertInvitation:
    try:
        payload = _serializer(key).loads(token)
    except BadSignature:
        raise LinkRefused("link_invalid", "Ce lien n'est pas valide : il a été modifié ou mal recopié.") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("i"), int):
        raise LinkRefused("link_invalid", "Ce lien n'est pas valide : il a été modifié ou mal recopié.")
    inv = uow.session.get(mm.ExpertInvitation, payload["i"])
    if inv is None or not hmac.compare_digest(inv.nonce, str(payload.get("n"))):
        raise LinkRefused("link_invalid", "Ce lien n'est pas valide : il a été modifié ou mal recopié.")
    if inv.used_at is not None:
        raise LinkRefused("link_used", "Ce lien a déjà servi : votre avis a été enregistré. Il ne peut pas être "
                                       "donné une seconde fois.")
    if clock.now() >= inv.expires_at:
        from services.wording import fr_instant

        raise LinkRefused("link_expired", f"Ce lien a expiré le {fr_instant(inv.expires_at)} : demandez une nouvelle "
                                          "invitation au chargé de mission.")
    return inv


def expert_summary(*, uow: UnitOfWork, clock: Clock, key: str, token: str) -> dict:
    """What the invited expert reads: one dossier, read only; no RIB, no tax or social certificate."""
    from services.queries import aid_of, history
    from services.wording import describe
    from states.lifecycle import STATE_LABELS

    inv = _invitation(uow, clock, key, token)
    d = uow.dossier(inv.dossier_id)
    programme = uow.catalogue.get(d.programme_id, d.programme_version)
    facts = d.company_facts or {}
    documents = [(doc.kind, doc.version) for doc in uow.session.scalars(
        select(m.Document).where(m.Document.dossier_id == d.id, m.Document.kind.notin_(HIDDEN_FROM_EXPERT))
        .order_by(m.Document.kind, m.Document.version))]
    events = [e for e in history(uow, d.id) if e["command"] not in NOTE_COMMANDS]
    names = display_names(uow.session, [*(e.get("actor") for e in events),
                                        *((e.get("data") or {}).get(k) for e in events for k in ("officer", "previous"))])
    return {"invitation": inv, "invited_by": display_name(uow.session, inv.invited_by), "reference": d.reference, "programme": programme.name, "region": programme.region,
            "company": facts.get("name"), "siren": facts.get("siren"), "employees": facts.get("employees"),
            "activity": facts.get("activity"), "state_label": STATE_LABELS[d.status], "submitted_at": d.submitted_at,
            "consultant": d.consultant, "quotes": d.quotes or {}, "aid": aid_of(d), "documents": documents,
            "history": [{"at": e["at"], "text": describe(e, names)} for e in events]}


def give_opinion(*, uow: UnitOfWork, clock: Clock, key: str, token: str, opinion, text) -> dict:
    inv = _invitation(uow, clock, key, token)
    if opinion not in OPINIONS:
        raise InvalidInput("opinion", "opinion : « favourable », « reserved » ou « unfavourable » "
                                      "(favorable, réservé, défavorable).")
    body = _text(text, "text", "l'avis")
    expert = Actor(inv.expert_name, "expert")
    cmd = _Command(uow, clock, expert, inv.dossier_id, None)
    _writable(cmd)
    I_ = mm.ExpertInvitation
    # Once: a second submission racing this one finds the invitation used and writes nothing.
    taken = cmd.session.execute(update(I_).where(I_.id == inv.id, I_.used_at.is_(None)).values(
        used_at=cmd.now, opinion=opinion, opinion_text=body, opinion_sha256=sha256_text(body))).rowcount
    if taken != 1:
        raise LinkRefused("link_used", "Ce lien a déjà servi : votre avis a été enregistré.")
    cmd.record("give_opinion", {"invitation_id": inv.id, "opinion": opinion, "kind": inv.expert_kind,
                                "text_sha256": sha256_text(body)})
    uow.commit()
    return {"invitation_id": inv.id, "dossier_id": inv.dossier_id, "opinion": opinion}


def invitations_of(session, actor: Actor, dossier_id: int) -> list[mm.ExpertInvitation]:
    if actor.role not in (*REGION_WRITER_ROLES, "auditor"):
        return []
    return list(session.scalars(select(mm.ExpertInvitation).where(mm.ExpertInvitation.dossier_id == dossier_id)
                                .order_by(mm.ExpertInvitation.id)))


# -- data protection (services.retention) -------------------------------------------------------

def anonymise_notes(session, dossier_id: int) -> int:
    """RGPD retention: the texts of the dossier's messages and annotations and the experts'
    opinions replaced by the marker (their SHA-256 kept, as the events carry them), the
    company's and consultant's names and the attachments' file names removed. Their files are
    deleted after the commit (`purge_attachment_files`). How many rows were touched."""
    from services.retention import ANONYMISED, ANONYMISED_BODY, PERSONAL_ROLES

    M, A, N, I_ = mm.DossierMessage, mm.MessageAttachment, mm.DossierAnnotation, mm.ExpertInvitation
    done = 0
    for msg in session.scalars(select(M).where(M.dossier_id == dossier_id)):
        msg.body = ANONYMISED_BODY
        if msg.author_role in PERSONAL_ROLES:
            msg.author = ANONYMISED
        if msg.read_by is not None and msg.author_side == "agent":  # read by the company or consultant
            msg.read_by = ANONYMISED
        done += 1
    for a in session.scalars(select(A).where(A.dossier_id == dossier_id)):
        suffix = a.filename.rsplit(".", 1)[-1][:10] if "." in a.filename else "bin"
        a.filename = f"piece-jointe-{a.id}.{suffix}"
    for note in session.scalars(select(N).where(N.dossier_id == dossier_id)):
        note.body = ANONYMISED_BODY
        done += 1
    for inv in session.scalars(select(I_).where(I_.dossier_id == dossier_id, I_.opinion_text.is_not(None))):
        inv.opinion_text = ANONYMISED_BODY
        done += 1
    return done


def purge_attachment_files(uow_factory, now) -> int:
    """Delete the files of anonymised dossiers' message attachments not yet deleted (a file a
    live piece or attachment still points at is kept: the storage is content-addressed)."""
    A = mm.MessageAttachment
    with uow_factory() as uow:
        s = uow.session
        pending = list(s.execute(select(A.id, A.storage_key).join(m.Dossier, m.Dossier.id == A.dossier_id)
                                 .where(m.Dossier.anonymised_at.is_not(None), A.content_deleted_at.is_(None))))
        if not pending:
            return 0
        keys = {r.storage_key for r in pending}
        live = set(s.scalars(select(A.storage_key).join(m.Dossier, m.Dossier.id == A.dossier_id)
                             .where(m.Dossier.anonymised_at.is_(None), A.storage_key.in_(keys))))
        live |= set(s.scalars(select(m.Document.storage_key).where(m.Document.storage_key.in_(keys),
                                                                    m.Document.content_deleted_at.is_(None))))
        deleted = sum(1 for key in sorted(keys - live) if uow.storage.delete(key))
        s.execute(update(A).where(A.id.in_([r.id for r in pending])).values(content_deleted_at=now))
        uow.commit()
    return deleted


def messages_written_by(session, authors: list[str]) -> list[mm.DossierMessage]:
    """The messages these names (accounts or display names) wrote: the right of access lists them."""
    if not authors:
        return []
    M = mm.DossierMessage
    return list(session.scalars(select(M).where(M.author.in_(sorted(set(authors)))).order_by(M.sent_at, M.id)))
