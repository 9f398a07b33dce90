"""Exports for auditors: one dossier's history as JSON (versioned schema, see
`services/audit/schema/dossier-history.v1.schema.json` and docs/audit.md) or PDF, and a
programme's dossiers as one zip archive.

The JSON carries the events exactly as stored (with their hashes, so that the chain can be
re-checked by anyone with `sha256`), the verification of the chain, the replay at the present
with every rule re-computation, the differences between the replay and the stored tables, the
documents with their SHA-256 and the messages sent with the hash of their templates. Its
`export_hash` is the SHA-256 of the canonical JSON of everything else."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from db import models as m
from programmes import EXAMPLE_NOTICE, Catalogue, default_catalogue
from rules.errors import NotFound
from services.audit.anchors import dossier_anchor, list_anchors
from services.audit.records import iso, load_events
from services.audit.replay import diff, replay_events, stored_state
from services.audit.verify import verify_events
from services.events import canonical_json
from services.wording import describe
from states.lifecycle import STATE_LABELS

SCHEMA_VERSION = "1.0.0"
SCHEMA_ID = "https://usine.invalid/schemas/audit/dossier-history.v1.schema.json"
SCHEMA_PATH = Path(__file__).parent / "schema" / "dossier-history.v1.schema.json"


def export_dossier(session, dossier_id: int, *, clock, catalogue: Catalogue | None = None,
                   exported_by: str | None = None) -> dict:
    catalogue = catalogue or default_catalogue()
    d = session.get(m.Dossier, dossier_id)
    if d is None:
        raise NotFound("dossier", dossier_id)
    events = load_events(session, dossier_id)
    verification = verify_events(d, events)
    replay = replay_events(events, dossier_id=d.id, reference=d.reference, catalogue=catalogue)
    differences = diff(replay, stored_state(session, d.id, catalogue=catalogue))
    try:
        programme = catalogue.get(d.programme_id, d.programme_version)
        programme_name, region, programme_hash = programme.name, programme.region, programme.content_hash
        example_notice = EXAMPLE_NOTICE if programme.is_example else None
    except Exception:
        programme_name = region = programme_hash = example_notice = None
    documents = [{
        "id": x.id, "kind": x.kind, "version": x.version, "filename": x.filename, "content_type": x.content_type,
        "size": x.size, "sha256": x.sha256, "uploaded_by": x.uploaded_by, "uploaded_role": x.uploaded_role,
        "uploaded_at": iso(x.uploaded_at), "review_status": x.review_status, "review_reason": x.review_reason,
        "reviewed_by": x.reviewed_by, "reviewed_at": iso(x.reviewed_at),
    } for x in session.scalars(select(m.Document).where(m.Document.dossier_id == d.id)
                               .order_by(m.Document.kind, m.Document.version))]
    notifications = [{
        "kind": n.kind, "created_at": iso(n.created_at), "sent_at": iso(n.sent_at), "status": n.status,
        "attempts": n.attempts, "recipient_role": n.recipient_role, "recipient_name": n.recipient_name,
        "recipient_address": n.recipient_address, "subject": n.subject, "template_hash": n.template_hash,
        "body_sha256": hashlib.sha256(n.body_text.encode("utf-8")).hexdigest(),
    } for n in session.scalars(select(m.Notification).where(m.Notification.dossier_id == d.id)
                               .order_by(m.Notification.created_at, m.Notification.id))]
    out = {
        "$schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "exported_at": clock.now().isoformat(),
        "exported_by": exported_by,
        "dossier": {
            "id": d.id, "reference": d.reference, "programme": f"{d.programme_id}@v{d.programme_version}",
            "programme_name": programme_name, "region": region, "programme_hash": programme_hash,
            "company": {"name": d.company_facts.get("name"), "siren": d.company_facts.get("siren")},
            "state": d.status, "state_label": STATE_LABELS.get(d.status, d.status),
            "example_notice": example_notice,
        },
        "events": [e.as_dict() | {"summary": describe(e.as_dict())} for e in events],
        "verification": {"ok": verification.ok, "problems": verification.problems,
                         "anchor": dossier_anchor(session, d.reference)},
        "replay": replay.as_dict(),
        "stored_state_differences": differences,
        "documents": documents,
        "notifications": notifications,
    }
    out = json.loads(canonical_json(out))
    out["export_hash"] = export_hash(out)
    return out


def export_hash(export: dict) -> str:
    body = {k: v for k, v in export.items() if k != "export_hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text("utf-8"))


def dumps(export: dict) -> str:
    return json.dumps(export, ensure_ascii=False, indent=2)


def export_programme(uow_factory, programme_id: str, out, *, clock, with_pdf: bool = True,
                     exported_by: str | None = None, dossier_ids: list[int] | None = None) -> dict:
    """Every dossier of a programme (all versions) in one zip: one JSON (and PDF) per dossier,
    the programme versions, the anchors, the schema and a manifest with each file's SHA-256.
    `out` is a path or a binary file object."""
    from services.audit.pdf import render_pdf

    with uow_factory() as uow:
        ids = dossier_ids if dossier_ids is not None else list(uow.session.scalars(
            select(m.Dossier.id).where(m.Dossier.programme_id == programme_id).order_by(m.Dossier.id)))
        catalogue = uow.catalogue
        versions = [p for p in catalogue.all() if p.id == programme_id]
        if not versions and not ids:
            from rules.errors import InvalidInput

            raise InvalidInput("programme", f"Programme inconnu : « {programme_id} ».", rule="unknown_programme")
        stored_versions = {(r.programme_id, r.version): r.content for r in uow.session.scalars(
            select(m.ProgrammeVersion).where(m.ProgrammeVersion.programme_id == programme_id))}
        anchors = list_anchors(uow.session, limit=100000)
    manifest = {"programme": programme_id, "exported_at": clock.now().isoformat(), "exported_by": exported_by,
                "schema_version": SCHEMA_VERSION, "dossiers": [], "files": {}}
    close = False
    if isinstance(out, (str, Path)):
        out = open(out, "wb")
        close = True
    try:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
            def put(name: str, data: bytes) -> None:
                z.writestr(name, data)
                manifest["files"][name] = hashlib.sha256(data).hexdigest()

            put("schema/dossier-history.v1.schema.json", SCHEMA_PATH.read_bytes())
            for p in versions:
                content = stored_versions.get((p.id, p.version)) or p.model_dump(mode="json")
                put(f"programmes/{p.id}.v{p.version}.json", json.dumps(
                    {"key": p.key, "content_hash": p.content_hash, "content": content},
                    ensure_ascii=False, indent=2).encode("utf-8"))
            put("anchors.json", json.dumps(anchors, ensure_ascii=False, indent=2).encode("utf-8"))
            for did in ids:
                with uow_factory() as uow:
                    export = export_dossier(uow.session, did, clock=clock, catalogue=uow.catalogue,
                                            exported_by=exported_by)
                ref = export["dossier"]["reference"]
                put(f"dossiers/{ref}.json", dumps(export).encode("utf-8"))
                if with_pdf:
                    put(f"dossiers/{ref}.pdf", render_pdf(export))
                manifest["dossiers"].append({
                    "reference": ref, "state": export["dossier"]["state"], "events": len(export["events"]),
                    "verified": export["verification"]["ok"], "recomputation_ok": export["replay"]["recomputation"]["ok"],
                    "identical_to_stored": not export["stored_state_differences"], "export_hash": export["export_hash"],
                })
            z.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
    finally:
        if close:
            out.close()
    return {"programme": programme_id, "dossiers": len(manifest["dossiers"]),
            "verified": sum(1 for d in manifest["dossiers"] if d["verified"]),
            "files": len(manifest["files"]) + 1}


def export_programme_bytes(uow_factory, programme_id: str, *, clock, **kwargs) -> bytes:
    buffer = io.BytesIO()
    export_programme(uow_factory, programme_id, buffer, clock=clock, **kwargs)
    return buffer.getvalue()


def parse_instant(value: str, field: str = "at") -> datetime:
    """An ISO 8601 instant with its offset, or a clear refusal naming the field."""
    from rules.errors import InvalidInput

    try:
        instant = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise InvalidInput(field, f"{field} : « {value} » n'est pas un instant ISO 8601 (ex. 2021-04-09T14:00:00+02:00).") from None
    if instant.tzinfo is None:
        raise InvalidInput(field, f"{field} : « {value} » doit porter son fuseau (ex. +02:00 ou Z).")
    return instant
