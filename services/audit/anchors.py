"""Anchors: what stops a whole dossier's history from disappearing unseen.

The per-dossier chain shows an event edited, removed, inserted or reordered inside a history,
but a dossier deleted with all its events leaves nothing to check. An anchor records, at one
instant, the head (last sequence number and hash) of every dossier that moved since the previous
anchor, and is itself chained to that previous anchor:

    anchor.hash = sha256(canonical {seq, anchored_at, dossiers, events, changed, delta_digest, prev})
    delta_digest = sha256 of the sorted lines "reference<TAB>seq<TAB>hash" of the heads recorded

The heads recorded so far (the latest per reference) must all still be there: `check_anchors`
names every anchored dossier whose events are gone (``dossier_removed``), cut short
(``removed``) or rewritten with recomputed hashes (``history_rewritten``). Deleting the anchor
rows as well breaks the anchors' own chain; rewriting that whole chain is caught by any copy of
an anchor hash kept outside the database: `anchor` appends each anchor, with its heads, to a
journal file (JSON lines), and `usine audit verify --journal FILE` checks the database against
it — naming the dossiers even when their anchor rows were deleted too.

Anchoring reads the events table with one grouped query and writes only its own tables: it
takes no lock that a command waits for (PostgreSQL or SQLite WAL readers), so it never
serializes commands. Two anchors written at once collide on the unique anchor number; the
second is refused and can simply run again. Events committed after an anchor are protected by
their chain, and by the next anchor."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from db.models_audit import AuditAnchor, AuditAnchorHead
from services.events import GENESIS, canonical_json, utc_iso
from services.wording import fr_instant, fr_value


class AnchorRefused(Exception):
    """Anchoring a database whose anchored history no longer holds would launder the damage."""

    def __init__(self, problems: list[dict]):
        super().__init__(f"Ancrage refusé : {len(problems)} anomalie(s) dans l'historique déjà ancré "
                         f"(lancer « usine audit verify »).")
        self.problems = problems


@dataclass
class AnchorResult:
    seq: int
    anchored_at: datetime
    hash: str
    prev_hash: str
    dossiers: int
    events: int
    changed: int

    def as_dict(self) -> dict:
        return {"seq": self.seq, "anchored_at": self.anchored_at.isoformat(), "hash": self.hash,
                "prev_hash": self.prev_hash, "dossiers": self.dossiers, "events": self.events, "changed": self.changed}


def _digest_line(ref: str, seq: int, h: str) -> bytes:
    return f"{ref}\t{seq}\t{h}\n".encode("utf-8")


def delta_digest(heads: list[tuple[str, int, str]]) -> str:
    digest = hashlib.sha256()
    for ref, seq, h in sorted(heads):
        digest.update(_digest_line(ref, seq, h))
    return digest.hexdigest()


def anchor_hash(*, seq: int, anchored_at: datetime, dossiers: int, events: int, changed: int, digest: str,
                prev_hash: str) -> str:
    return hashlib.sha256(canonical_json({
        "seq": seq, "anchored_at": utc_iso(anchored_at), "dossiers": dossiers, "events": events,
        "changed": changed, "delta_digest": digest, "prev": prev_hash,
    }).encode("utf-8")).hexdigest()


_CURRENT_HEADS = text(
    "SELECT e.dossier_id, e.dossier_reference, e.seq, e.hash FROM events e "
    "JOIN (SELECT dossier_id, MAX(seq) AS seq FROM events GROUP BY dossier_id) h "
    "ON h.dossier_id = e.dossier_id AND h.seq = e.seq")

_ANCHORED_HEADS = text(
    "SELECT a.dossier_reference, a.dossier_id, a.seq, a.hash, a.anchor_seq, e.hash AS now_hash, "
    "e.dossier_reference AS now_reference, "
    "(SELECT MAX(x.seq) FROM events x WHERE x.dossier_id = a.dossier_id) AS now_last "
    "FROM audit_anchor_heads a "
    "JOIN (SELECT dossier_reference, MAX(anchor_seq) AS anchor_seq FROM audit_anchor_heads "
    "      GROUP BY dossier_reference) l "
    "  ON l.dossier_reference = a.dossier_reference AND l.anchor_seq = a.anchor_seq "
    "LEFT JOIN events e ON e.dossier_id = a.dossier_id AND e.seq = a.seq")


def _heads_by_anchor(conn) -> Iterator[tuple[int, int, str]]:
    """(anchor seq, heads it recorded, their `delta_digest`) for every anchor, from the heads read
    in the digest's own order — reference, seq, hash, compared as Python compares strings
    (code points: PostgreSQL's "C" collation) — so that no anchor's heads are held at once."""
    reference = AuditAnchorHead.dossier_reference
    if conn.dialect.name == "postgresql":
        reference = reference.collate("C")
    heads = conn.execution_options(stream_results=True, yield_per=20000).execute(
        select(AuditAnchorHead.anchor_seq, AuditAnchorHead.dossier_reference, AuditAnchorHead.seq, AuditAnchorHead.hash)
        .order_by(AuditAnchorHead.anchor_seq, reference, AuditAnchorHead.seq, AuditAnchorHead.hash))
    current, count, digest = None, 0, hashlib.sha256()
    for anchor_seq, ref, seq, h in heads:
        if anchor_seq != current:
            if current is not None:
                yield current, count, digest.hexdigest()
            current, count, digest = anchor_seq, 0, hashlib.sha256()
        count += 1
        digest.update(_digest_line(ref, seq, h))
    if current is not None:
        yield current, count, digest.hexdigest()


def _anchored_problems(rows, anchored_on: dict[int, datetime]) -> list[dict]:
    """Each anchored head must still be in the events table with its hash."""
    problems = []
    for r in rows:
        ref, did, seq, h, aseq, now_hash, now_ref, now_last = r
        when = anchored_on.get(aseq)
        when_s = f"ancré le {fr_instant(when)}" if when else f"ancré (ancre n°{aseq})"
        if now_hash is None or now_ref != ref:
            if now_last is None or now_ref not in (None, ref):
                problems.append({"dossier": ref, "dossier_id": did, "problem": "dossier_removed", "seq": None,
                                 "detail": f"dossier {ref} ({seq} événement(s), {when_s}) : son historique a disparu"})
            else:
                problems.append({"dossier": ref, "dossier_id": did, "problem": "removed", "seq": seq,
                                 "detail": f"événement n°{seq} ({when_s}) supprimé : l'historique s'arrête au n°{now_last}"})
        elif now_hash != h:
            problems.append({"dossier": ref, "dossier_id": did, "problem": "history_rewritten", "seq": seq,
                             "detail": f"événement n°{seq} {when_s} avec l'empreinte {h[:16]}…, aujourd'hui {now_hash[:16]}… : "
                                       f"historique réécrit et ré-empreinté"})
    return problems


def anchor(uow_factory, clock, *, journal: str | Path | None = None,
           only_if_moved: bool = False) -> AnchorResult | None:
    """Record the heads that moved since the last anchor, chained to it. With `only_if_moved`,
    nothing is written (None) when no head moved since the last anchor (the API's periodic
    anchoring: an idle database gets no anchor every quarter of an hour)."""
    with uow_factory() as uow:
        s = uow.session
        anchors = {a.seq: a.anchored_at for a in s.scalars(select(AuditAnchor))}
        problems = _anchored_problems(s.execute(_ANCHORED_HEADS).all(), anchors)
        if problems:
            raise AnchorRefused(problems)
        last = s.scalar(select(AuditAnchor).order_by(AuditAnchor.seq.desc()).limit(1))
        anchored = {r.dossier_reference: r.seq for r in s.execute(text(
            "SELECT a.dossier_reference, a.seq FROM audit_anchor_heads a JOIN (SELECT dossier_reference, "
            "MAX(anchor_seq) AS anchor_seq FROM audit_anchor_heads GROUP BY dossier_reference) l "
            "ON l.dossier_reference = a.dossier_reference AND l.anchor_seq = a.anchor_seq"))}
        current = s.execute(_CURRENT_HEADS).all()
        delta = [(r.dossier_reference, r.seq, r.hash, r.dossier_id) for r in current
                 if anchored.get(r.dossier_reference, 0) < r.seq]
        if only_if_moved and not delta:
            return None
        seq = (last.seq + 1) if last else 1
        prev = last.hash if last else GENESIS
        dossiers = (last.dossiers if last else 0) + sum(1 for d in delta if d[0] not in anchored)
        events = (last.events if last else 0) + sum(d[1] - anchored.get(d[0], 0) for d in delta)
        digest = delta_digest([(d[0], d[1], d[2]) for d in delta])
        now = clock.now()
        h = anchor_hash(seq=seq, anchored_at=now, dossiers=dossiers, events=events, changed=len(delta),
                        digest=digest, prev_hash=prev)
        s.add(AuditAnchor(seq=seq, anchored_at=now, dossiers=dossiers, events=events, changed=len(delta),
                          delta_digest=digest, prev_hash=prev, hash=h))
        if delta:
            s.execute(AuditAnchorHead.__table__.insert(), [
                {"anchor_seq": seq, "dossier_reference": ref, "dossier_id": did, "seq": hseq, "hash": hh}
                for ref, hseq, hh, did in delta])
        try:
            uow.commit()
        except IntegrityError:
            uow.rollback()
            raise AnchorRefused([{"problem": "concurrent_anchor", "seq": seq,
                                  "detail": f"une autre ancre n°{seq} a été écrite en même temps : relancer"}]) from None
    result = AnchorResult(seq, now, h, prev, dossiers, events, len(delta))
    if journal is not None:
        path = Path(journal)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(_journal_line(result.as_dict(), digest, delta))
    return result


def _journal_line(anchor_dict: dict, digest: str, heads) -> str:
    return json.dumps({**anchor_dict, "delta_digest": digest,
                       "heads": [[ref, hseq, hh, did] for ref, hseq, hh, did in sorted(heads)]},
                      ensure_ascii=False) + "\n"


def export_journal(session, path: str | Path) -> dict:
    """Write every anchor with the heads it recorded, as journal lines (the format `anchor`
    appends and `usine audit verify --journal` reads), to keep outside the database: a copy
    taken today vouches for every history anchored up to today, even if the database — anchors
    included — is later rewritten. Returns what was written (count, last anchor, file SHA-256)."""
    heads: dict[int, list] = {}
    for r in session.execute(select(AuditAnchorHead.anchor_seq, AuditAnchorHead.dossier_reference,
                                    AuditAnchorHead.seq, AuditAnchorHead.hash, AuditAnchorHead.dossier_id)):
        heads.setdefault(r[0], []).append((r[1], r[2], r[3], r[4]))
    anchors = session.scalars(select(AuditAnchor).order_by(AuditAnchor.seq)).all()
    text_out = "".join(_journal_line(
        AnchorResult(a.seq, a.anchored_at, a.hash, a.prev_hash, a.dossiers, a.events, a.changed).as_dict(),
        a.delta_digest, heads.get(a.seq, [])) for a in anchors)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text_out, encoding="utf-8")
    last = anchors[-1] if anchors else None
    return {"path": str(path), "anchors": len(anchors), "sha256": hashlib.sha256(text_out.encode("utf-8")).hexdigest(),
            "last": None if last is None else {"seq": last.seq, "anchored_at": last.anchored_at.isoformat(),
                                               "hash": last.hash}}


def list_anchors(session, limit: int = 50) -> list[dict]:
    rows = session.scalars(select(AuditAnchor).order_by(AuditAnchor.seq.desc()).limit(limit)).all()
    return [{"seq": a.seq, "anchored_at": a.anchored_at.isoformat(), "dossiers": a.dossiers, "events": a.events,
             "changed": a.changed, "hash": a.hash, "prev_hash": a.prev_hash} for a in rows]


def dossier_anchor(session, reference: str) -> dict | None:
    """The latest anchor that recorded this dossier's head."""
    head = session.scalar(select(AuditAnchorHead).where(AuditAnchorHead.dossier_reference == reference)
                          .order_by(AuditAnchorHead.anchor_seq.desc()).limit(1))
    if head is None:
        return None
    a = session.scalar(select(AuditAnchor).where(AuditAnchor.seq == head.anchor_seq))
    return {"anchor_seq": head.anchor_seq, "seq": head.seq, "hash": head.hash,
            "anchored_at": a.anchored_at.isoformat() if a else None, "anchor_hash": a.hash if a else None}


def check_anchors(conn, *, only_reference: str | None = None, dossier_id: int | None = None,
                  journal: str | Path | None = None) -> tuple[dict, list[dict]]:
    """The anchors' own chain, each anchor's recorded heads, and every anchored head against the
    events table (and against the journal file when given)."""
    from sqlalchemy.orm import Session

    session = Session(bind=conn)
    problems: list[dict] = []

    def anchor_problem(kind: str, seq, detail: str) -> None:
        problems.append({"dossier": None, "dossier_id": None, "problem": kind, "seq": seq, "detail": detail})

    anchors = session.scalars(select(AuditAnchor).order_by(AuditAnchor.seq)).all()
    prev = GENESIS
    for expected, a in enumerate(anchors, start=1):
        if a.seq != expected:
            anchor_problem("anchor_removed", expected, f"ancre n°{expected} supprimée (la suite passe à {a.seq})")
        if a.prev_hash != prev:
            anchor_problem("anchor_chain_broken", a.seq, f"ancre n°{a.seq} : le lien avec l'ancre précédente est rompu")
        if anchor_hash(seq=a.seq, anchored_at=a.anchored_at, dossiers=a.dossiers, events=a.events, changed=a.changed,
                       digest=a.delta_digest, prev_hash=a.prev_hash) != a.hash:
            anchor_problem("anchor_edited", a.seq, f"ancre n°{a.seq} : son contenu ne correspond plus à son empreinte")
        prev = a.hash
    anchored_on = {a.seq: a.anchored_at for a in anchors}
    if only_reference is None and dossier_id is None:
        recorded = dict(((seq, (changed, digest)) for seq, changed, digest in _heads_by_anchor(conn)))
        for a in anchors:
            changed, digest = recorded.get(a.seq, (0, delta_digest([])))
            if changed != a.changed or digest != a.delta_digest:
                anchor_problem("anchor_heads_altered", a.seq,
                               f"ancre n°{a.seq} : {a.changed} tête(s) de dossier ancrée(s), {changed} retrouvée(s) "
                               f"ou modifiée(s) — des dossiers ancrés ont été effacés de l'ancre")
        # Streamed: one head at a time, unless the journal check needs them all at once.
        streamed = conn.execution_options(stream_results=True, yield_per=20000).execute(_ANCHORED_HEADS)
        rows = streamed.all() if journal is not None else streamed
    else:
        rows = [r for r in session.execute(_ANCHORED_HEADS).all()
                if r[0] == only_reference or (only_reference is None and r[1] == dossier_id)]
    problems += _anchored_problems(rows, anchored_on)
    journal_report = None
    if journal is not None:
        journal_report = _check_journal(session, Path(journal), anchors, rows, only_reference, problems)
    session.close()
    last = anchors[-1] if anchors else None
    report = {"checked": True, "anchors": len(anchors),
              "last": None if last is None else {"seq": last.seq, "anchored_at": last.anchored_at.isoformat(),
                                                 "hash": last.hash, "dossiers": last.dossiers, "events": last.events},
              "journal": journal_report}
    return report, problems


def _check_journal(session, path: Path, anchors, rows, only_reference, problems: list[dict]) -> dict:
    if not path.exists():
        problems.append({"dossier": None, "dossier_id": None, "problem": "journal_missing", "seq": None,
                         "detail": f"journal des ancres introuvable : {path}"})
        return {"path": str(path), "anchors": 0}
    in_db = {a.seq: a.hash for a in anchors}
    heads: dict[str, tuple[int, str, int, int]] = {}
    count = 0
    for line in path.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        j = json.loads(line)
        count += 1
        if j["seq"] not in in_db:
            problems.append({"dossier": None, "dossier_id": None, "problem": "anchor_removed", "seq": j["seq"],
                             "detail": f"ancre n°{j['seq']} du journal (du {fr_value(j.get('anchored_at'))}) absente de la base"})
        elif in_db[j["seq"]] != j["hash"]:
            problems.append({"dossier": None, "dossier_id": None, "problem": "anchor_edited", "seq": j["seq"],
                             "detail": f"ancre n°{j['seq']} : la base et le journal diffèrent (réécriture des ancres)"})
        for ref, seq, h, did in j.get("heads", []):
            if only_reference is None or ref == only_reference:
                if ref not in heads or heads[ref][0] < seq:
                    heads[ref] = (seq, h, did, j["seq"])
    known = {r[0]: (r[2], r[3]) for r in rows}
    missing = [(ref, v) for ref, v in heads.items() if known.get(ref) != (v[0], v[1])]
    if missing:
        # Check the journal's heads the database no longer anchors (or anchors differently).
        check = []
        for ref, (seq, h, did, aseq) in missing:
            ev = session.execute(text(
                "SELECT hash, dossier_reference, (SELECT MAX(seq) FROM events WHERE dossier_id = :d) "
                "FROM events WHERE dossier_id = :d AND seq = :s"), {"d": did, "s": seq}).first()
            last = session.execute(text("SELECT MAX(seq) FROM events WHERE dossier_id = :d"), {"d": did}).scalar()
            check.append((ref, did, seq, h, aseq, ev[0] if ev else None, ev[1] if ev else None, last))
        already = {(p["dossier"], p["problem"]) for p in problems}
        for p in _anchored_problems(check, {a.seq: a.anchored_at for a in anchors}):
            if (p["dossier"], p["problem"]) not in already:
                p["detail"] += " (d'après le journal des ancres)"
                problems.append(p)
    return {"path": str(path), "anchors": count}
