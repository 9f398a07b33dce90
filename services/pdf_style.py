"""The house's PDF look (reportlab), shared by every PDF Usine writes: the audit export
(`services.audit.pdf`), the loan schedule (`services.loan_exports`), the letters and session
documents (`services.letters`). One font choice, one set of paragraph styles, one table style.

Text is real text (extractable, searchable): tests read it back with pypdf."""
from __future__ import annotations

import os
from functools import lru_cache
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, Table, TableStyle

_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu",)
_BUNDLED = os.path.join(os.path.dirname(reportlab.__file__), "fonts")


@lru_cache(maxsize=1)
def fonts() -> tuple[str, str, str, set[int] | None]:
    """DejaVu when the system has it (covers every character we print), else Bitstream Vera,
    which reportlab ships (covers French and €; a few arrows are replaced)."""
    for folder in _FONT_DIRS:
        regular = os.path.join(folder, "DejaVuSans.ttf")
        bold = os.path.join(folder, "DejaVuSans-Bold.ttf")
        mono = os.path.join(folder, "DejaVuSansMono.ttf")
        if all(os.path.exists(p) for p in (regular, bold, mono)):
            pdfmetrics.registerFont(TTFont("Usine", regular))
            pdfmetrics.registerFont(TTFont("Usine-Bold", bold))
            pdfmetrics.registerFont(TTFont("Usine-Mono", mono))
            return "Usine", "Usine-Bold", "Usine-Mono", None
    pdfmetrics.registerFont(TTFont("UsineVera", os.path.join(_BUNDLED, "Vera.ttf")))
    pdfmetrics.registerFont(TTFont("UsineVera-Bold", os.path.join(_BUNDLED, "VeraBd.ttf")))
    pdfmetrics.registerFont(TTFont("UsineVera-Mono", os.path.join(_BUNDLED, "Vera.ttf")))
    face = TTFont("probe", os.path.join(_BUNDLED, "Vera.ttf")).face
    return "UsineVera", "UsineVera-Bold", "UsineVera-Mono", set(face.charToGlyph)


_REPLACE = {"→": "->", "\u202f": "\u00a0", "…": "...", "’": "'"}


def text(value) -> str:
    """Text for a Paragraph: escaped, characters the font lacks replaced."""
    s = "—" if value is None else str(value)
    glyphs = fonts()[3]
    if glyphs is not None:
        s = "".join(ch if ord(ch) in glyphs or ch in "\n" else _REPLACE.get(ch, "?") for ch in s)
    return escape(s)


def short(value, limit: int = 240) -> str:
    s = "—" if value is None else str(value)
    return s if len(s) <= limit else s[:limit] + " [...]"


@lru_cache(maxsize=1)
def styles() -> dict[str, ParagraphStyle]:
    regular, bold, mono, _ = fonts()
    base = ParagraphStyle("base", fontName=regular, fontSize=8.5, leading=10.5, alignment=TA_LEFT)
    return {
        "title": ParagraphStyle("title", parent=base, fontName=bold, fontSize=15, leading=19, spaceAfter=4),
        "h2": ParagraphStyle("h2", parent=base, fontName=bold, fontSize=11.5, leading=15, spaceBefore=10, spaceAfter=4),
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9),
        "cellb": ParagraphStyle("cellb", parent=base, fontName=bold, fontSize=7.5, leading=9),
        "mono": ParagraphStyle("mono", parent=base, fontName=mono, fontSize=6.3, leading=7.8),
        "ok": ParagraphStyle("ok", parent=base, fontName=bold, textColor=colors.HexColor("#1b5e20")),
        "bad": ParagraphStyle("bad", parent=base, fontName=bold, textColor=colors.HexColor("#b71c1c")),
        # A letter reads at a larger size than a report.
        "letter": ParagraphStyle("letter", parent=base, fontSize=10, leading=13.5, spaceAfter=6),
        "letter_item": ParagraphStyle("letter_item", parent=base, fontSize=10, leading=13.5, leftIndent=12,
                                      bulletIndent=2, spaceAfter=1),
        "letter_head": ParagraphStyle("letter_head", parent=base, fontSize=10, leading=13),
        "letter_subject": ParagraphStyle("letter_subject", parent=base, fontName=bold, fontSize=11, leading=14,
                                         spaceBefore=6, spaceAfter=6),
    }


def table(rows, widths, st=None, header=True) -> Table:
    st = st or styles()
    cells = [[c if not isinstance(c, str) else Paragraph(text(short(c, 1200)), st["cellb"] if header and i == 0 else st["cell"])
              for c in row] for i, row in enumerate(rows)]
    t = Table(cells, colWidths=widths, repeatRows=1 if header else 0)
    style = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9e9e9e")),
             ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
             ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eaf6")))
    t.setStyle(TableStyle(style))
    return t
