"""A council session's documents: its agenda (ordre du jour) and its list of deliberations with
the votes, as the session page shows them, as PDF (the house's styles, `services.pdf_style`) and
as CSV / XLSX / ODS (`services.table_exports`). Names, amounts and dates in French; no id."""
from __future__ import annotations

import io
from decimal import Decimal

from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer
from sqlalchemy import select

from db import models as m
from notifications.rendering import siren
from programmes import EXAMPLE_NOTICE
from rules import french
from services.pdf_style import styles, table, text
from services.search import dossier_row, scope_clause
from services.table_exports import Column
from services.wording import OUTCOME_LABELS


def agenda_rows(uow, session_row, actor) -> list[dict]:
    """The dossiers on the session's agenda within the actor's scope, by reference: what the
    session page, its PDF and its exports show."""
    dossiers = uow.session.scalars(
        select(m.Dossier).join(m.Company, m.Dossier.company_id == m.Company.id)
        .where(m.Dossier.session_id == session_row.id, scope_clause(actor, uow.catalogue))
        .order_by(m.Dossier.reference)).all()
    out = []
    for d in dossiers:
        row = dossier_row(d, uow.catalogue)
        record = d.voted or d.proposal or {}
        row["proposed_total"] = record.get("total")
        row["adjourned"] = bool((d.proposal or {}).get("adjourned"))
        row["adjustments"] = record.get("adjustments", [])
        row["deliberation"] = d.deliberation
        row["outcome"] = outcome_of(d)
        out.append(row)
    return out


def outcome_of(d: m.Dossier) -> str | None:
    """The session's vote on the dossier: approved, rejected, adjourned, or None (not voted yet)."""
    if d.voted is not None:
        return "approved"
    if d.status == "rejected" and d.deliberation:
        return "rejected"
    if (d.proposal or {}).get("adjourned"):
        return "adjourned"
    return None


def _reductions(row: dict) -> str:
    from services.wording import RULE_LABELS  # the one list of the rules' French names

    def rule_label(rule: str) -> str:
        return RULE_LABELS.get(rule, rule)

    return ", ".join(f"{rule_label(a['rule'])} (−{french.euros(a['amount'])})" for a in row["adjustments"]) or "—"


# The agenda's columns, as the session page's table (its headers), plus the vote.
AGENDA_COLUMNS = (Column("Dossier", width=17), Column("Entreprise", width=32), Column("État", width=24),
                  Column("Aide proposée ou votée", "money"), Column("Réductions", width=40), Column("Décision"),
                  Column("N° de délibération"))


def agenda_table(rows: list[dict]) -> list[list]:
    return [[r["reference"], r["company"], r["state_label"] + (" (ajourné)" if r["adjourned"] else ""),
             Decimal(r["proposed_total"]) if r["proposed_total"] is not None else None, _reductions(r),
             OUTCOME_LABELS.get(r["outcome"]) if r["outcome"] else None, r["deliberation"]] for r in rows]


def _doc(buffer, title: str):
    return SimpleDocTemplate(buffer, pagesize=landscape(A4), leftMargin=14 * mm, rightMargin=14 * mm,
                             topMargin=14 * mm, bottomMargin=14 * mm, title=title, author="Usine",
                             creator="Usine (services.council_documents)", lang="fr")


def _head(s, title: str, example: bool) -> list:
    st = styles()
    story = []
    if example:
        story.append(Paragraph(text(EXAMPLE_NOTICE), st["bad"]))
    story.append(Paragraph(text(title), st["title"]))
    story.append(Paragraph(text(f"Programme « {s.programme_name} » — séance du {french.long_date(s.session_date)} ; "
                                f"ordre du jour clos le {french.long_date(s.agenda_closes_on)}."), st["body"]))
    story.append(Spacer(1, 4 * mm))
    return story


def agenda_pdf(s, rows: list[dict], *, example: bool = False) -> bytes:
    """The ordre du jour: each dossier proposed, its company, its state and the aid proposed."""
    buffer = io.BytesIO()
    title = f"Ordre du jour de la séance {s.code}"
    story = _head(s, title, example)
    data = [["N°", "Dossier", "Entreprise", "SIREN", "État", "Aide proposée ou votée", "Réductions"]]
    for i, r in enumerate(rows, 1):
        data.append([str(i), r["reference"], r["company"], siren(r["siren"]),
                     r["state_label"] + (" (ajourné)" if r["adjourned"] else ""),
                     french.euros(r["proposed_total"]) if r["proposed_total"] is not None else "—", _reductions(r)])
    if rows:
        story.append(table(data, [10 * mm, 36 * mm, 60 * mm, 26 * mm, 36 * mm, 34 * mm, 66 * mm]))
        total = sum((Decimal(r["proposed_total"]) for r in rows if r["proposed_total"] is not None), Decimal(0))
        story.append(Spacer(1, 3 * mm))
        story.append(Paragraph(text(f"{len(rows)} dossier(s) inscrit(s) ; aide proposée ou votée au total : "
                                    f"{french.euros(total)}."), styles()["body"]))
    else:
        story.append(Paragraph(text("Aucun dossier inscrit à cette séance."), styles()["body"]))
    _doc(buffer, title).build(story)
    return buffer.getvalue()


def deliberations_pdf(s, rows: list[dict], *, example: bool = False) -> bytes:
    """The liste des délibérations: each vote of the session (number, dossier, company, decision,
    aid voted); the dossiers not voted yet are listed apart."""
    buffer = io.BytesIO()
    title = f"Liste des délibérations de la séance {s.code}"
    story = _head(s, title, example)
    st = styles()
    voted = [r for r in rows if r["outcome"]]
    data = [["N° de délibération", "Dossier", "Entreprise", "Décision", "Aide votée"]]
    for r in voted:
        data.append([r["deliberation"] or "—", r["reference"], r["company"], OUTCOME_LABELS[r["outcome"]],
                     french.euros(r["proposed_total"]) if r["outcome"] == "approved" and r["proposed_total"] else "—"])
    if voted:
        story.append(table(data, [48 * mm, 40 * mm, 90 * mm, 40 * mm, 40 * mm]))
        counts = {k: sum(1 for r in voted if r["outcome"] == k) for k in OUTCOME_LABELS}
        story.append(Spacer(1, 3 * mm))
        story.append(Paragraph(text(
            f"Votes : {counts['approved']} favorable(s), {counts['rejected']} défavorable(s), "
            f"{counts['adjourned']} ajournement(s)."), st["body"]))
    else:
        story.append(Paragraph(text("Aucun vote n'est encore enregistré pour cette séance."), st["body"]))
    waiting = [r for r in rows if not r["outcome"]]
    if waiting:
        story.append(Paragraph(text("Dossiers inscrits non encore votés : "
                                    + ", ".join(f"{r['reference']} ({r['company']})" for r in waiting) + "."), st["body"]))
    _doc(buffer, title).build(story)
    return buffer.getvalue()
