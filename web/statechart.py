"""The state chart of `states.lifecycle`, drawn as SVG from its machines (the edges are
`lifecycle.edges()`, the transitions the machines fire; only where each state sits on the page is
chosen here), and the same lifecycle as an accessible table (`lifecycle.rows()`)."""
from __future__ import annotations

from html import escape

from markupsafe import Markup

from states.lifecycle import EXIT_STATES, FINAL_STATES, OPEN_STATES, STATE_LABELS, WORKING_STATES, edges, rows
from web.format import ROLE_LABELS

GUARD_LABELS = {
    "window_open": "un appel à manifestation d'intérêt est ouvert",
    "uploader_may_provide": "le déposant peut fournir ce type de pièce",
    "candidacy_documents_complete": "pièces de candidature complètes",
    "candidacy_documents_reviewed": "pièces de candidature examinées et acceptées (si le programme l'exige)",
    "company_eligible": "entreprise éligible (taille, région, activité, premier exercice, difficulté, régularité)",
    "phase1_days": "jours de la phase 1 dans les bornes",
    "diagnostic_documents_complete": "rapport de diagnostic déposé",
    "phase2_days": "jours de la phase 2 dans les bornes",
    "action_plan_submitted": "plan d'action déposé",
    "vote_documents_complete": "pièces du vote complètes",
    "agenda_open": "ordre du jour de la séance ouvert",
    "amounts_within_caps": "montants calculés (plafonds, fonds propres, de minimis)",
    "on_session_agenda": "inscrit à l'ordre du jour de la séance",
    "session_held": "la séance s'est tenue (pas de vote avant son jour)",
    "payment_deadline_open": "délai de demande de paiement ouvert",
    "claim_valid": "demande valide (plafond des avances, factures, date limite)",
    "claim_pending": "une demande de paiement est en attente",
    "line_amounts": "jours ou dépenses de la ligne dans les bornes",
    "plan_valid": "plan déposé valide (jours de la phase 2 ou actions numérotées)",
    "plan_approved": "plan de progrès approuvé par un vote",
    "actions_available": "actions du plan, non couvertes par un autre dossier",
    "loan_to_disburse": "un prêt voté, pas encore versé",
    "repayment_valid": "montant dû ou remboursement anticipé exact",
}

# Where each state sits: (column, row).
LAYOUT = {
    "draft": (0, 0), "submitted": (0, 1), "eligibility_review": (0, 2), "diagnostic": (0, 3),
    "action_plan": (0, 4), "ready_for_vote": (0, 5), "approved": (0, 6), "in_payment": (0, 7), "closed": (0, 8),
    "rejected": (1, 2), "instruction": (1, 4), "in_default": (1, 5), "in_repayment": (1, 6),
    "withdrawn": (1, 7), "lapsed": (1, 8),
}
EVERYWHERE = ("withdraw", "lapse")  # from every non-final state: drawn once, from a note
BOX_W, BOX_H, ROW, TOP = 230, 40, 72, 40
COL_X = (150, 520)
WIDTH = 820


def _box(state: str) -> tuple[int, int]:
    col, row = LAYOUT[state]
    return COL_X[col], TOP + row * ROW


def _label(x: float, y: float, text: str, anchor: str = "start") -> str:
    return (f'<text x="{x:.0f}" y="{y:.0f}" font-size="12.5" fill="#1a1a1a" text-anchor="{anchor}" '
            f'class="edge-label">{escape(text)}</text>')


def state_chart_svg() -> Markup:
    height = TOP + 9 * ROW + 10
    out = [
        f'<svg class="statechart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-labelledby="sc-t sc-d" xmlns="http://www.w3.org/2000/svg">',
        '<title id="sc-t">Cycle de vie d\'un dossier</title>',
        '<desc id="sc-d">Brouillon, candidature déposée, instruction de recevabilité, diagnostic, plan d\'action, '
        'proposé au vote, voté, en paiement, clôturé ; refus possible à la recevabilité et au vote ; abandon et '
        'caducité depuis tout état non final. Le tableau qui suit donne chaque transition, ses rôles et ses '
        'conditions.</desc>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1a1a1a"/></marker></defs>',
    ]
    x0, y0 = _box("draft")
    out.append(f'<circle cx="{x0 + BOX_W / 2}" cy="{y0 - 26}" r="7" fill="#1a1a1a"/>')
    out.append(f'<line x1="{x0 + BOX_W / 2}" y1="{y0 - 19}" x2="{x0 + BOX_W / 2}" y2="{y0 - 2}" stroke="#1a1a1a" '
               f'stroke-width="1.5" marker-end="url(#arrow)"/>')
    seen = set()
    labelled = set()
    left_bends = 0
    for t in edges():
        if t.dest is None or t.trigger in EVERYWHERE:
            continue
        src = t.source
        key = (src, t.dest)
        if key in seen:
            continue
        seen.add(key)
        sx, sy = _box(src)
        dx, dy = _box(t.dest)
        label = t.label
        if LAYOUT[src][0] == LAYOUT[t.dest][0] and LAYOUT[t.dest][1] == LAYOUT[src][1] + 1:
            x = sx + BOX_W / 2
            out.append(f'<line x1="{x}" y1="{sy + BOX_H}" x2="{x}" y2="{dy - 2}" stroke="#1a1a1a" '
                       f'stroke-width="1.5" marker-end="url(#arrow)"/>')
            out.append(_label(x + 8, sy + BOX_H + (ROW - BOX_H) / 2 + 4, label))
        elif LAYOUT[src][0] == LAYOUT[t.dest][0]:
            # Skipping rows in the same column: a curve on the left.
            left_bends += 1
            bulge = sx - 40 - 28 * left_bends
            y1, y2 = sy + BOX_H / 2, dy + BOX_H / 2
            out.append(f'<path d="M{sx},{y1} C{bulge},{y1} {bulge},{y2} {dx - 2},{y2}" fill="none" '
                       f'stroke="#1a1a1a" stroke-width="1.5" marker-end="url(#arrow)"/>')
            out.append(_label(bulge + 10, (y1 + y2) / 2 + 4, label, "end"))
        else:
            x1, y1 = sx + BOX_W, sy + BOX_H / 2
            x2, y2 = dx - 2, dy + BOX_H / 2
            out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#1a1a1a" stroke-width="1.5" '
                       f'marker-end="url(#arrow)"/>')
            if (t.trigger, t.dest) not in labelled:  # one label per action, on its first edge
                labelled.add((t.trigger, t.dest))
                out.append(_label(x1 + (x2 - x1) * 0.3, y1 + (y2 - y1) * 0.3 - 6, label))
    # Withdraw and lapse: from every non-final state, drawn once from a note.
    nx, ny = COL_X[1], TOP + 4 * ROW + 20
    out.append(f'<rect x="{nx}" y="{ny}" width="{BOX_W + 40}" height="{BOX_H + 16}" fill="#fff8e1" stroke="#8a6d00" '
               f'stroke-dasharray="4 3" rx="6"/>')
    out.append(_label(nx + 10, ny + 22, "Depuis tout état non final :"))
    out.append(_label(nx + 10, ny + 42, "abandon (entreprise), caducité (automatique)"))
    for dest, trigger in (("withdrawn", "withdraw"), ("lapsed", "lapse")):
        dx, dy = _box(dest)
        x = dx + (40 if dest == "withdrawn" else BOX_W - 40)
        out.append(f'<line x1="{x}" y1="{ny + BOX_H + 16}" x2="{x}" y2="{dy - 2}" stroke="#1a1a1a" stroke-width="1.5" '
                   f'stroke-dasharray="5 3" marker-end="url(#arrow)"/>')
    for state, (col, row) in LAYOUT.items():
        x, y = _box(state)
        final = state in FINAL_STATES
        fill = "#eef1f6" if final else "#ffffff"
        stroke = "#1a1a1a"
        out.append(f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" fill="{fill}" stroke="{stroke}" '
                   f'stroke-width="{2.5 if final else 1.5}"/>')
        # The state by its French label only: its code id is for machines (`data-state`).
        out.append(f'<text x="{x + BOX_W / 2}" y="{y + 25}" font-size="14" font-weight="600" fill="#1a1a1a" '
                   f'text-anchor="middle" data-state="{state}">{escape(STATE_LABELS[state])}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _sources(source: tuple[str, ...]) -> list[str]:
    if set(source) == set(OPEN_STATES):
        return ["tout état non final"]
    if set(source) == set(EXIT_STATES):
        return ["tout état non final, sauf un prêt versé (en remboursement, en défaut)"]
    if set(source) == set(WORKING_STATES):
        return ["tout état en cours, de « candidature déposée » au remboursement d'un prêt"]
    return [STATE_LABELS[s] for s in source]


def transitions_table() -> list[dict]:
    table = []
    for t in rows():
        table.append({
            "trigger": t.trigger, "label": t.label or t.trigger,
            "sources": _sources(t.source),
            "dest": STATE_LABELS[t.dest] if t.dest else "inchangé",
            "roles": [ROLE_LABELS.get(r, r) for r in t.roles],
            "guards": [GUARD_LABELS.get(g, g) for g in t.guards],
        })
    return table
