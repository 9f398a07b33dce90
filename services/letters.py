"""Letters and documents as PDF (issue 19, part 5; docs/letters.md).

One source for every word: a letter's PDF prints the text body of the e-mail — the one stored in
the outbox when the letter was queued, or, before it is sent, the one the current templates make
of the dossier (`services.previews`) — so that the e-mail and the PDF never disagree. The
convention is a template too (`notifications/templates/_convention.txt.j2`), rendered
with the letters' filters. Layout only is added here: the house's fonts and styles
(`services.pdf_style`), the date of the letter, headings and lists."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer
from sqlalchemy import select

from db import models as m
from notifications.rendering import default_renderer
from rules import french
from rules.calendar import paris_date
from rules.errors import RuleViolation
from rules.money import ZERO
from services.clock import Clock
from services.outbox import dossier_context
from services.pdf_style import styles, text
from services.wording import NOTIFICATION_STATUS_LABELS

# The letters a dossier page offers, by the slug of their URL, with their label.
LETTERS = {
    "accuse-de-reception": "Accusé de réception",
    "decision": "Décision",
    "convention": "Convention attributive",
}
# The kinds whose e-mail carries its PDF as an attachment (services.delivery).
PDF_KINDS = frozenset({"candidacy_received", "eligibility_decision", "vote_result", "dossier_lapsed"})


class LetterUnavailable(RuleViolation):
    """The document does not exist (yet) for this dossier: named, never a blank PDF."""

    def __init__(self, message: str, rule: str = "letter_unavailable"):
        super().__init__(rule, message, field="document")


class ConventionNotRequired(LetterUnavailable):
    def __init__(self, subsidy: Decimal, threshold: Decimal):
        super().__init__(f"Pas de convention : la subvention votée ({french.euros(subsidy)}) n'excède pas "
                         f"{french.euros(threshold)} (loi n° 2000-321, art. 10 ; décret n° 2001-495).",
                         rule="convention_not_required")


@dataclass(frozen=True)
class Letter:
    slug: str
    kind: str | None      # the notification kind, None for the convention
    title: str
    subject: str
    text: str
    dated: date | None
    source: str           # "stored" (what was queued or sent), "built" (a preview), "document"
    example: bool

    reference: str

    @property
    def filename(self) -> str:
        return f"{self.slug}-{self.reference}.pdf"


def _stored(session, dossier_id: int, kinds: tuple[str, ...], *, decision_only: bool = False):
    rows = session.scalars(select(m.Notification).where(m.Notification.dossier_id == dossier_id,
                                                        m.Notification.kind.in_(kinds))
                           .order_by(m.Notification.id.desc()))
    for row in rows:
        ctx = row.context or {}
        if decision_only and not (ctx.get("outcome") in ("approved", "rejected") or ctx.get("decision") == "ineligible"
                                  or row.kind == "dossier_lapsed"):
            continue
        return row
    return None


def _example(uow, dossier: m.Dossier) -> bool:
    return uow.catalogue.get(dossier.programme_id, dossier.programme_version).status == "example"


def _from_row(slug: str, row: m.Notification, example: bool, reference: str) -> Letter:
    return Letter(slug, row.kind, LETTERS[slug], row.subject, row.body_text, paris_date(row.created_at), "stored",
                  example, reference)


def _preview(uow, slug: str, kind: str, dossier: m.Dossier, clock: Clock) -> Letter:
    from services.previews import PreviewUnavailable, preview

    try:
        rendered, _, source = preview(uow, kind=kind, dossier_id=dossier.id, clock=clock)
    except PreviewUnavailable as exc:
        raise LetterUnavailable(str(exc)) from None
    return Letter(slug, kind, LETTERS[slug], rendered.subject, rendered.text, paris_date(clock.now()), source,
                  _example(uow, dossier), dossier.reference)


def dossier_letter(uow, dossier: m.Dossier, slug: str, clock: Clock) -> Letter:
    """The letter `slug` of the dossier: the one queued (its stored text), else the preview."""
    if slug == "convention":
        return convention(uow, dossier, clock)
    if slug not in LETTERS:
        raise LetterUnavailable(f"Document inconnu « {slug} ».")
    example = _example(uow, dossier)
    if slug == "accuse-de-reception":
        if dossier.status == "draft":
            raise LetterUnavailable("La candidature n'est pas encore déposée : pas d'accusé de réception.")
        row = _stored(uow.session, dossier.id, ("candidacy_received",))
        return _from_row(slug, row, example, dossier.reference) if row else _preview(uow, slug, "candidacy_received", dossier, clock)
    row = _stored(uow.session, dossier.id, ("vote_result", "eligibility_decision", "dossier_lapsed"), decision_only=True)
    if row is not None:
        return _from_row(slug, row, example, dossier.reference)
    if dossier.status == "ready_for_vote":
        # Before the vote: the letter a favourable vote would send, for the service to read.
        return _preview(uow, slug, "vote_result", dossier, clock)
    raise LetterUnavailable("Aucune décision n'a encore été prise sur ce dossier.")


def available_letters(uow, dossier: m.Dossier) -> list[dict]:
    """What the dossier page offers: each document with whether it is the letter sent or a preview."""
    out = []
    if dossier.status != "draft":
        sent = _stored(uow.session, dossier.id, ("candidacy_received",))
        out.append({"slug": "accuse-de-reception", "label": LETTERS["accuse-de-reception"],
                    "state": NOTIFICATION_STATUS_LABELS[sent.status] if sent else "aperçu"})
    decision = _stored(uow.session, dossier.id, ("vote_result", "eligibility_decision", "dossier_lapsed"),
                       decision_only=True)
    if decision is not None or dossier.status == "ready_for_vote":
        out.append({"slug": "decision", "label": LETTERS["decision"],
                    "state": NOTIFICATION_STATUS_LABELS[decision.status] if decision else "projet (avant le vote)"})
    if dossier.voted is not None:
        programme = uow.catalogue.get(dossier.programme_id, dossier.programme_version)
        if subsidy_of(dossier.voted) > programme.money.convention_threshold:
            out.append({"slug": "convention", "label": LETTERS["convention"], "state": "à signer"})
    return out


# -- the convention ---------------------------------------------------------------------------

def subsidy_of(record: dict) -> Decimal:
    """The subsidies of a vote record (a loan is no subsidy: it is repaid)."""
    return sum((Decimal(line["aid"]) for line in record.get("lines", [])), ZERO)


_PHASE_LABELS = {1: "phase 1 (diagnostic)", 2: "phase 2 (plan d'action)"}


def _tranches(programme, phase: int, aid: Decimal) -> list[str]:
    rate = programme.phase(phase).advance_max_rate if phase in {p.number for p in programme.phases} else None
    if rate:
        return [f"avances dans la limite de {french.percent(rate)} de l'aide de la phase, soit "
                f"{french.euros(french.round_cents(aid * rate))} au plus, sur présentation des factures acquittées",
                "solde à la demande de versement finale, au vu des dépenses justifiées"]
    return ["versement unique à la demande de versement finale, au prorata des dépenses justifiées"]


def convention(uow, dossier: m.Dossier, clock: Clock) -> Letter:
    """The attributive agreement of a voted subsidy above the threshold (refused below it)."""
    record = dossier.voted
    if record is None:
        raise LetterUnavailable("La convention suit le vote favorable du Conseil régional : le dossier n'est pas voté.")
    programme = uow.catalogue.get(dossier.programme_id, dossier.programme_version)
    subsidy, threshold = subsidy_of(record), programme.money.convention_threshold
    if subsidy <= threshold:
        raise ConventionNotRequired(subsidy, threshold)
    from services.commands import expense_window

    phases = []
    for line in record["lines"]:
        aid = Decimal(line["aid"])
        if aid <= 0:
            continue
        label = _PHASE_LABELS.get(line["phase"], f"ligne {line['phase']}") if not record.get("by_instrument") \
            else f"subvention (ligne {dossier.line or line['phase']})"
        phases.append({"label": label, "aid": line["aid"], "rate": line["rate"],
                       "eligible_expense": line["eligible_expense"],
                       "tranches": _tranches(programme, line["phase"], aid)})
    session_row = dossier.session
    until = expense_window(programme, dossier).ends_on
    context = {"dossier": dossier_context(dossier, programme), "deliberation": dossier.deliberation or "—",
               "session_date": (session_row.session_date if session_row else dossier.voted_on).isoformat(),
               "subsidy_total": str(subsidy), "threshold": str(threshold),
               "loan_total": record.get("loan_total") or "0", "phases": phases,
               "expense_until": until.isoformat() if until else None,
               "payment_deadline_on": dossier.payment_deadline_on.isoformat() if dossier.payment_deadline_on else None}
    body, _ = default_renderer().render_document("_convention.txt.j2", context)
    subject = f"Convention attributive de subvention — dossier n° {dossier.reference}"
    return Letter("convention", None, LETTERS["convention"], subject, body, paris_date(clock.now()), "document",
                  programme.status == "example", dossier.reference)


# -- layout -----------------------------------------------------------------------------------

def _blocks(body: str) -> list[list[str]]:
    blocks, current = [], []
    for line in body.splitlines():
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def without_email_footer(body: str) -> str:
    """The text above the e-mail's signature delimiter « -- » (« Message envoyé automatiquement ;
    merci de ne pas y répondre directement. »): what an e-mail says of itself, not a letter."""
    lines = body.splitlines()
    cut = next((i for i, line in enumerate(lines) if line.rstrip() == "--"), len(lines))
    return "\n".join(lines[:cut])


def render_letter_pdf(letter: Letter) -> bytes:
    """The letter's text, laid out: the header, the date, the subject in bold, paragraphs, lists,
    « Article N — » headings. The e-mail's footer (after the « -- » delimiter) is left out: a
    printed letter is not an automatic message."""
    st = styles()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                            bottomMargin=18 * mm, title=letter.subject, author="Usine", subject=letter.title,
                            creator="Usine (services.letters)", lang="fr")
    story: list = []
    dated = False
    for block in _blocks(without_email_footer(letter.text)):
        if not dated and any(line.startswith("Objet :") for line in block):
            if letter.dated is not None:
                story.append(Paragraph(text(f"Le {french.long_date(letter.dated)}"), st["letter_head"]))
            story.append(Spacer(1, 3 * mm))
            dated = True
        for line in block:
            if line.startswith("  - "):  # a list item, in its place: after the sentence that introduces it
                story.append(Paragraph(text(line[4:]), st["letter_item"], bulletText="–"))
            elif line.startswith("Objet :"):
                story.append(Paragraph(text(line), st["letter_subject"]))
            elif line.startswith("Article ") and " — " in line:
                story.append(Paragraph(text(line), st["h2"]))
            elif line.startswith("***") and line.endswith("***"):
                story.append(Paragraph(text(line.strip("* ")), st["bad"]))
            else:
                story.append(Paragraph(text(line), st["letter"] if len(block) == 1 or len(line) > 90 else st["letter_head"]))
        story.append(Spacer(1, 2 * mm))
    doc.build(story)
    return buffer.getvalue()


def letter_pdf_from_text(kind: str, reference: str, subject: str, body_text: str,
                         dated: date | None) -> tuple[bytes, str]:
    """The PDF of an outbox row (the e-mail's attachment), from its own subject and text body,
    and its file name. `dated`: the day it is sent (None: no date line; the e-mail's Date header
    dates it)."""
    slug = "accuse-de-reception" if kind == "candidacy_received" else "decision"
    letter = Letter(slug, kind, LETTERS[slug], subject, body_text, dated, "stored", False, reference)
    return render_letter_pdf(letter), letter.filename
