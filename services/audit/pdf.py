"""A dossier's history as a readable PDF (reportlab), rendered from the JSON export so that the
two never say different things: integrity, amounts, rule re-computation, timeline (who, when,
what, why), documents with their SHA-256, messages sent with their template hash, and every
event's hash. Text is real text (extractable, searchable)."""
from __future__ import annotations

import io

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer

from notifications.rendering import DOCUMENT_LABELS
from rules.french import shown_euros
from services.pdf_style import fonts as _fonts
from services.pdf_style import short as _short
from services.pdf_style import styles as _styles
from services.pdf_style import table as _table
from services.pdf_style import text as _t
from services.wording import (
    NOTIFICATION_KIND_LABELS,
    NOTIFICATION_STATUS_LABELS,
    REVIEW_LABELS,
    fr_day,
    fr_instant,
    fr_value_pair,
)
from states.lifecycle import ROLE_LABELS, STATE_LABELS


def _when(iso: str | None) -> str:
    """An instant as a French reader reads it: 25/03/2021 09:00, Paris time."""
    return fr_instant(iso)


def _mono(value: str | None, st) -> Paragraph:
    return Paragraph(_t(value or "—"), st["mono"])


def render_pdf(export: dict) -> bytes:
    st = _styles()
    d = export["dossier"]
    replay = export["replay"]
    state = replay["state"]
    amounts = state["amounts"]
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm, topMargin=14 * mm,
                            bottomMargin=16 * mm, title=f"Dossier {d['reference']} — historique certifié",
                            author="Usine", subject="Export d'audit", creator="Usine (services.audit)")
    width = A4[0] - 28 * mm
    story = []
    story.append(Paragraph(_t(f"Dossier {d['reference']} — historique certifié"), st["title"]))
    if d.get("example_notice"):
        story.append(Paragraph(_t(d["example_notice"]), st["bad"]))
    story.append(Paragraph(_t(f"{d.get('programme_name') or d['programme']} ({d['programme']}, région {d.get('region') or '—'})"), st["body"]))
    story.append(Paragraph(_t(f"Entreprise : {d['company']['name']} — SIREN {d['company']['siren']}"), st["body"]))
    story.append(Paragraph(_t(f"État : {d['state_label']} ({d['state']})"), st["body"]))
    story.append(Paragraph(_t(f"Export du {_when(export['exported_at'])} (heure de Paris)"
                              f"{' par ' + export['exported_by'] if export.get('exported_by') else ''} — "
                              f"schéma v{export['schema_version']}"), st["small"]))

    # Integrity
    story.append(Paragraph("Intégrité de l'historique", st["h2"]))
    v = export["verification"]
    events = export["events"]
    if v["ok"]:
        last = events[-1]["hash"] if events else "—"
        story.append(Paragraph(_t(f"Chaîne d'empreintes SHA-256 intacte : {len(events)} événement(s), "
                                  f"dernière empreinte {last}."), st["ok"]))
    else:
        story.append(Paragraph(_t(f"ANOMALIES : {len(v['problems'])} problème(s) dans l'historique."), st["bad"]))
        rows = [["Anomalie", "N°", "Détail"]] + [[p["problem"], str(p["seq"] or "—"), p["detail"]] for p in v["problems"]]
        story.append(_table(rows, [28 * mm, 12 * mm, width - 40 * mm], st))
    anchor = v.get("anchor")
    if anchor:
        story.append(Paragraph(_t(f"Ancrage : tête n°{anchor['seq']} enregistrée par l'ancre n°{anchor['anchor_seq']} "
                                  f"du {_when(anchor.get('anchored_at'))} (empreinte d'ancre {anchor.get('anchor_hash')})."),
                               st["small"]))
    else:
        story.append(Paragraph("Ancrage : dossier pas encore couvert par une ancre quotidienne.", st["small"]))
    differences = export["stored_state_differences"]
    story.append(Paragraph(_t("Rejeu des événements : identique à l'état enregistré." if not differences else
                              f"Rejeu des événements : {len(differences)} différence(s) avec l'état enregistré."),
                           st["ok"] if not differences else st["bad"]))
    if differences:
        rows = [["Champ", "Rejoué", "Enregistré"]] + [
            [x["path"], _short(fr_value_pair(x["replayed"], x["stored"])), _short(fr_value_pair(x["stored"], x["replayed"]))]
            for x in differences[:60]]
        story.append(_table(rows, [60 * mm, (width - 60 * mm) / 2, (width - 60 * mm) / 2], st))

    # Amounts
    story.append(Paragraph("Montants", st["h2"]))
    aid = amounts.get("aid") or {}
    vote = state.get("vote") or {}
    # The aid shown is the voted one once voted, before that the proposal put to the vote.
    voted = bool(vote.get("voted"))
    basis = "votée" if voted else "proposée"
    rows = [["", "Montant"]]
    if aid:
        for key in sorted(k for k in aid if k != "total"):
            rows.append([f"Aide {basis} — phase {key.replace('phase', '')}", shown_euros(aid[key])])
        rows.append([f"Aide {basis} — total", shown_euros(amounts.get("aid_total") if voted else aid.get("total"))])
    else:
        rows.append(["Aide", "—"])
    if voted or vote.get("deliberation"):
        on = f" du {fr_day(vote['voted_on'])}" if vote.get("voted_on") else ""
        rows.append(["Délibération", f"{vote.get('deliberation') or '—'}{on}"])
    elif aid:
        rows.append(["Séance proposée", f"{state.get('session') or '—'} (pas encore votée)"])
    rows += [["Total versé", shown_euros(amounts.get("paid_total"))],
             ["Reversements (titres de recettes)", shown_euros(amounts.get("recovered_total"))],
             ["Net payé", shown_euros(amounts.get("net_paid"))],
             ["Reste à payer", shown_euros(amounts.get("remaining"))],
             ["Reliquat annulé", shown_euros(amounts.get("cancelled_remainder"))],
             ["Date limite de demande de solde", fr_day(state.get("payment_deadline_on"))]]
    story.append(_table(rows, [80 * mm, 60 * mm], st))
    if state["payments"] or state["recoveries"]:
        story.append(Spacer(1, 4))
        rows = [["Date", "Phase", "Nature", "Montant"]]
        for p in state["payments"]:
            rows.append([_when(p["paid_at"]), str(p["phase"]), "avance" if p["kind"] == "advance" else "solde", shown_euros(p["amount"])])
        for r in state["recoveries"]:
            rows.append([_when(r["issued_at"]), str(r["phase"]), "ordre de reversement", shown_euros(r["amount"])])
        story.append(_table(rows, [35 * mm, 15 * mm, 40 * mm, 35 * mm], st))
    rec = replay["recomputation"]
    story.append(Spacer(1, 4))
    if rec["ok"]:
        story.append(Paragraph(_t(f"Recalcul des règles ({d['programme']}) : {rec['checks']} contrôle(s), aucun écart — "
                                  f"les montants enregistrés sont ceux que donnent les règles de la version du programme."),
                               st["ok"]))
    else:
        story.append(Paragraph(_t(f"Recalcul des règles : {len(rec['discrepancies'])} écart(s) sur {rec['checks']} contrôle(s)."),
                               st["bad"]))
        rows = [["N°", "Contrôle", "Enregistré", "Recalculé", "Détail"]] + [
            [str(x["seq"] or "—"), x["check"], _short(fr_value_pair(x["recorded"], x["recomputed"]), 120),
             _short(fr_value_pair(x["recomputed"], x["recorded"]), 120), x["detail"]]
            for x in rec["discrepancies"]]
        story.append(_table(rows, [10 * mm, 32 * mm, 38 * mm, 38 * mm, width - 118 * mm], st))

    # Timeline
    story.append(Paragraph("Chronologie : qui, quand, quoi, pourquoi", st["h2"]))
    rows = [["N°", "Date (Paris)", "Qui", "Quoi", "Motif", "État"]]
    for e in events:
        move = (f"{STATE_LABELS.get(e['state_before'], e['state_before'])} -> {STATE_LABELS.get(e['state_after'], e['state_after'])}"
                if e["state_before"] != e["state_after"] else STATE_LABELS.get(e["state_after"], e["state_after"]))
        rows.append([str(e["seq"]), _when(e["at"]), f"{e['actor']} ({ROLE_LABELS.get(e['role'], e['role'])})",
                     e.get("summary") or e["command"], e.get("reason") or "", move])
    story.append(_table(rows, [8 * mm, 22 * mm, 36 * mm, width - 8 * mm - 22 * mm - 36 * mm - 30 * mm - 28 * mm,
                               30 * mm, 28 * mm], st))

    # Open requests
    if state["open_requests"]:
        story.append(Paragraph("Demandes de pièces ouvertes", st["h2"]))
        rows = [["Demande", "Pièces", "Demandée le", "Caducité le", "Prochaine relance"]]
        for r in state["open_requests"]:
            nxt = r.get("next_reminder")
            rows.append([str(r["request_id"]), ", ".join(DOCUMENT_LABELS.get(k, k) for k in r["kinds"]),
                         fr_day(r["requested_on"]), fr_day(r["lapse_on"]),
                         f"{fr_day(nxt['on'])} (J+{nxt['after_days']})" if nxt else "—"])
        story.append(_table(rows, [16 * mm, 60 * mm, 25 * mm, 25 * mm, width - 126 * mm], st))

    # Documents
    story.append(Paragraph("Pièces et empreintes SHA-256", st["h2"]))
    rows = [["Pièce", "V.", "Déposée", "Examen", "SHA-256"]]
    for x in export["documents"]:
        review = REVIEW_LABELS.get(x["review_status"], x["review_status"]) + (
            f" — {x['review_reason']}" if x.get("review_reason") else "")
        rows.append([f"{DOCUMENT_LABELS.get(x['kind'], x['kind'])} ({x['filename']}, {x['size']} o)", str(x["version"]),
                     f"{_when(x['uploaded_at'])}, {x['uploaded_by']}", review, _mono(x["sha256"], st)])
    if len(rows) == 1:
        rows.append(["aucune pièce", "", "", "", ""])
    story.append(_table(rows, [48 * mm, 7 * mm, 38 * mm, 22 * mm, width - 115 * mm], st))

    # Messages
    story.append(Paragraph("Messages envoyés", st["h2"]))
    rows = [["Date", "Message", "Destinataire", "Statut", "Empreinte du modèle"]]
    for n in export["notifications"]:
        status = NOTIFICATION_STATUS_LABELS.get(n["status"], n["status"])
        rows.append([_when(n["created_at"]), f"{NOTIFICATION_KIND_LABELS.get(n['kind'], n['kind'])} — {n['subject']}",
                     f"{n.get('recipient_name') or ''} <{n.get('recipient_address') or ''}>",
                     status + (f" le {_when(n['sent_at'])}" if n.get("sent_at") else ""), _mono(n["template_hash"], st)])
    if len(rows) == 1:
        rows.append(["aucun message", "", "", "", ""])
    story.append(_table(rows, [22 * mm, 50 * mm, 38 * mm, 22 * mm, width - 132 * mm], st))

    # Hashes
    story.append(Paragraph("Empreintes des événements", st["h2"]))
    rows = [["N°", "Commande", "Empreinte précédente", "Empreinte"]]
    for e in events:
        rows.append([str(e["seq"]), e["command"], _mono(e["prev_hash"], st), _mono(e["hash"], st)])
    story.append(_table(rows, [8 * mm, 28 * mm, (width - 36 * mm) / 2, (width - 36 * mm) / 2], st))
    story.append(Spacer(1, 6))
    story.append(KeepTogether([Paragraph(_t(
        "Chaque empreinte est le SHA-256 du JSON canonique de l'événement (clés triées, sans espaces, UTF-8) "
        "incluant l'empreinte précédente ; le schéma de l'export JSON (dossier-history.v1) décrit le calcul."), st["small"]),
        Paragraph(_t(f"Empreinte de l'export JSON : {export.get('export_hash')}"), st["small"])]))

    reference = d["reference"]
    regular = _fonts()[0]

    def footer(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont(regular, 7)
        canvas.drawString(14 * mm, 9 * mm, f"Usine — dossier {reference} — export d'audit")
        canvas.drawRightString(A4[0] - 14 * mm, 9 * mm, f"page {document.page}")
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
