"""A loan's schedule (échéancier) as the dossier page shows it and as files to download: CSV
(French spreadsheet conventions: `;` separator, decimal comma, UTF-8 with BOM) and PDF
(reportlab). Each instalment with what was paid of it, read from the repayments recorded
(`services.loans`, `rules.loans`)."""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

from db import models as m
from programmes import EXAMPLE_NOTICE
from rules import french
from rules import loans as rules
from rules.money import ZERO
from services.csv_export import write_csv
from services.loans import plan_of, repayments_of


def _fr(amount: Decimal) -> str:
    """A spreadsheet cell: « 1234,50 » (decimal comma, no grouping, so that it stays a number)."""
    return french.number(amount, 2, grouping=False)


def schedule_rows(session, dossier: m.Dossier, today: date | None = None) -> list[dict]:
    """Every instalment: number, due day, principal, interest, amount, outstanding after it, what
    was paid of it and its status (« payée », « partiellement payée », « à venir », « impayée »)."""
    if dossier.loan is None:
        return []
    plan = plan_of(dossier)
    book = rules._replay(plan, repayments_of(session, dossier.id))  # the pure replay of the repayments
    rows = []
    for k, inst in enumerate(plan):
        paid = book.interest_paid[k] + book.principal_paid[k]
        if book.ended and paid < inst.amount:
            status = "soldée par remboursement anticipé"
        elif paid >= inst.amount:
            status = "payée"
        elif today is not None and inst.due_on <= today:
            status = "impayée" if paid == ZERO else "partiellement payée"
        else:
            status = "à venir" if paid == ZERO else "partiellement payée"
        rows.append({"number": inst.number, "due_on": inst.due_on, "principal": inst.principal,
                     "interest": inst.interest, "amount": inst.amount, "outstanding_after": inst.outstanding_after,
                     "paid": paid, "status": status})
    return rows


def _is_example(session, dossier: m.Dossier) -> bool:
    from programmes import default_catalogue

    return default_catalogue().get(dossier.programme_id, dossier.programme_version).is_example


HEADER = ("N°", "Échéance", "Capital (€)", "Intérêts (€)", "Montant (€)", "Capital restant dû après (€)",
          "Payé (€)", "Statut")


def schedule_csv(session, dossier: m.Dossier, today: date | None = None) -> bytes:
    preamble = [EXAMPLE_NOTICE] if _is_example(session, dossier) else []
    preamble.append(f"Échéancier du prêt — dossier {dossier.reference} — {dossier.company_facts.get('name', '')}")
    rows = [dict(zip(HEADER, (r["number"], f"{french.day(r['due_on'])}", _fr(r["principal"]), _fr(r["interest"]),
                              _fr(r["amount"]), _fr(r["outstanding_after"]), _fr(r["paid"]), r["status"])))
            for r in schedule_rows(session, dossier, today)]
    return ("\ufeff" + write_csv(HEADER, rows, delimiter=";", preamble=preamble)).encode("utf-8")


def schedule_pdf(session, dossier: m.Dossier, today: date | None = None) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=15 * mm, title=f"Échéancier du prêt — {dossier.reference}", lang="fr")
    styles = getSampleStyleSheet()
    story = []
    if _is_example(session, dossier):
        story.append(Paragraph(f"<b>{EXAMPLE_NOTICE}</b>", styles["Normal"]))
    loan = dossier.loan or {}
    story.append(Paragraph(f"Échéancier du prêt — dossier {dossier.reference}", styles["Title"]))
    story.append(Paragraph(f"{dossier.company_facts.get('name', '')} (SIREN {french.siren(dossier.company_facts.get('siren', ''))})",
                           styles["Normal"]))
    if loan:
        story.append(Paragraph(
            f"Capital {french.euros(Decimal(loan['principal']))}, taux annuel {french.percent(loan['annual_rate'], 2)}, "
            f"versé le {french.day(date.fromisoformat(loan['disbursed_on']))}, différé {loan['deferral_months']} mois, "
            f"{loan['instalments']} échéances trimestrielles de capital.", styles["Normal"]))
    story.append(Spacer(1, 6 * mm))
    data = [list(HEADER)]
    for r in schedule_rows(session, dossier, today):
        data.append([str(r["number"]), f"{french.day(r['due_on'])}", french.euros(r["principal"]), french.euros(r["interest"]),
                     french.euros(r["amount"]), french.euros(r["outstanding_after"]), french.euros(r["paid"]), r["status"]])
    table = Table(data, repeatRows=1)
    table.setStyle(TableStyle([("FONTSIZE", (0, 0), (-1, -1), 7), ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                               ("ALIGN", (2, 1), (6, -1), "RIGHT"), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey)]))
    story.append(table)
    doc.build(story)
    return buf.getvalue()
