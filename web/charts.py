"""Server-rendered SVG charts: horizontal bars with a title, a text description (read by screen
readers) and the figures written beside each bar. No script, no external library; colours meet
WCAG AA contrast on white."""
from __future__ import annotations

import itertools
from decimal import Decimal
from html import escape

from markupsafe import Markup

BAR = "#1e4fa3"        # 7.4:1 on white
BAR_ALT = "#0f6e4f"    # 6.4:1 on white
TEXT = "#1a1a1a"
GRID = "#c8ced8"
_ids = itertools.count(1)


def _num(value) -> Decimal:
    return Decimal(str(value or 0))


def bar_chart(title: str, rows: list[tuple[str, object, str]], *, description: str | None = None,
              alt_colour: bool = False, width: int = 560) -> Markup:
    """rows: (label, value, value as displayed). The description defaults to every row spelled out."""
    uid = f"chart{next(_ids)}"
    longest = max((len(label) for label, _, _ in rows), default=10)
    label_w = min(320, max(110, int(longest * 7.6) + 16))
    value_w, row_h, top = max(90, max((len(shown) for _, _, shown in rows), default=6) * 8 + 16), 30, 8
    bar_w = max(160, width - label_w - value_w)
    width = label_w + bar_w + value_w
    height = top * 2 + row_h * max(1, len(rows))
    peak = max((_num(v) for _, v, _ in rows), default=Decimal(0)) or Decimal(1)
    desc = description or "; ".join(f"{label} : {shown}" for label, _, shown in rows) + "."
    colour = BAR_ALT if alt_colour else BAR
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'role="img" aria-labelledby="{uid}-t {uid}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{uid}-t">{escape(title)}</title><desc id="{uid}-d">{escape(desc)}</desc>',
        f'<line x1="{label_w}" y1="{top - 4}" x2="{label_w}" y2="{height - top + 4}" stroke="{GRID}" stroke-width="1"/>',
    ]
    for i, (label, value, shown) in enumerate(rows):
        y = top + i * row_h
        w = int(bar_w * _num(value) / peak) if peak else 0
        parts.append(f'<text x="{label_w - 8}" y="{y + row_h / 2 + 5}" text-anchor="end" font-size="14" '
                     f'fill="{TEXT}">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 5}" width="{max(w, 1 if _num(value) > 0 else 0)}" '
                     f'height="{row_h - 10}" fill="{colour}" rx="2"/>')
        parts.append(f'<text x="{label_w + w + 6}" y="{y + row_h / 2 + 5}" font-size="14" font-weight="600" '
                     f'fill="{TEXT}">{escape(shown)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar(title: str, share: Decimal | None, shown: str, *, width: int = 560) -> Markup:
    """One share (0–1) as a filled bar out of 100 %."""
    uid = f"chart{next(_ids)}"
    height = 44
    inner = width - 92
    filled = int(inner * (share or 0)) if share is not None else 0
    desc = f"{title} : {shown}."
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'role="img" aria-labelledby="{uid}-t {uid}-d" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{uid}-t">{escape(title)}</title><desc id="{uid}-d">{escape(desc)}</desc>'
        f'<rect x="1" y="6" width="{inner}" height="24" fill="#ffffff" stroke="{GRID}"/>'
        f'<rect x="1" y="6" width="{filled}" height="24" fill="{BAR_ALT}"/>'
        f'<text x="{filled + 10}" y="24" font-size="14" font-weight="600" fill="{TEXT}">{escape(shown)}</text>'
        f'</svg>')
