"""The one French formatter: amounts, numbers, rates, dates and instants as people read them.

Every place that shows a figure to a person — web pages, letters, the CLI, the PDF and CSV
exports, the domain's own messages — formats it here (the older names ``web.format.eur``,
``notifications.rendering.euros``, ``services.wording.fr_day``… delegate to this module). It lives
in ``rules`` because the domain's messages need it too and every layer may import the domain; it
imports no database, web or workflow code, only Babel (CLDR data, locale ``fr_FR``) and
python-stdnum (the SIREN's grouping).

Conventions (one of each, see docs/dependencies.md):

* **Money is rounded half up to the cent, on Decimal** (``ROUND_HALF_UP``: 0,125 € → 0,13 €,
  -0,125 € → -0,13 €), before Babel sees it; a sum that rounds to zero shows « 0,00 € », never
  « -0,00 € ». Floats are refused: a float has already lost the cent it is asked to print.
* **The space is U+00A0** (no-break space) between groups of thousands, before « € » and before
  « % »: « 17 500,00 € », « 2,03 % ». CLDR's fr_FR puts the narrow U+202F between thousands; the
  letters chose U+00A0 long ago because every mail client, terminal and PDF font has that glyph
  (the PDFs' standard fonts have no U+202F), so Babel's U+202F is replaced by U+00A0. Both keep the
  figure on one line.
* Days as « 25/03/2021 »; instants in Europe/Paris wall time « 25/03/2021 09:00 »; letters
  spell them « 1er mars 2021 » and « 1er février 2021 à 10 h 00 ».

Babel formats a value in about 0.1 ms; amounts and rates are cached per (rounded) value, since
pages and letters print the same few figures over and over.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from stdnum.fr import siren as stdnum_siren

from rules.calendar import PARIS

__all__ = [
    "CENT",
    "NBSP",
    "as_decimal",
    "day",
    "euros",
    "instant",
    "long_date",
    "long_instant",
    "number",
    "percent",
    "is_nonzero_amount",
    "round_cents",
    "siren",
]

LOCALE = Locale.parse("fr_FR")
CENT = Decimal("0.01")
NBSP = "\u00a0"
_NNBSP = "\u202f"


def as_decimal(value: object) -> Decimal:
    """A Decimal, an int or a decimal string (« 17500.00 ») as a finite Decimal.

    Raises TypeError for anything else (floats and booleans included), ValueError for a string
    that is not a number, or for an infinity or NaN."""
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        try:
            amount = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValueError(f"not an amount: {value!r}") from None
    else:
        raise TypeError(f"an amount must be a Decimal, an int or a decimal string, not {value!r}")
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return amount


def round_cents(value: object) -> Decimal:
    """The amount rounded half up to the cent (0.125 → 0.13, -0.125 → -0.13); never -0.00."""
    amount = as_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    return amount if amount else abs(amount)


def is_nonzero_amount(value: object) -> bool:
    """An amount that is not zero once rounded to the cent (None counts as zero): the templates'
    ``{% if x is nonzero_amount %}``, the same in the letters and the web pages."""
    return value is not None and round_cents(value) != 0


def _spaces(text: str) -> str:
    return text.replace(_NNBSP, NBSP)


@lru_cache(maxsize=8192)
def _euros(cents: Decimal) -> str:
    return _spaces(format_currency(cents, "EUR", locale=LOCALE))


def euros(value: object) -> str:
    """An amount in euros: Decimal("17500") or "17500.00" → « 17 500,00 € » (rounded half up)."""
    return _euros(round_cents(value))


DASH = "—"


def shown_euros(value: object) -> str:
    """An amount as a page, a letter, a PDF or a journal line shows it: ``euros`` of the amount,
    « — » when there is none (None or ""), and the value as it is when it is not an amount at all.

    Lenient where ``euros`` is strict because what is shown comes from stored facts and from the
    services (the odd float of a KPI average, read through ``str`` so that it keeps the digits it
    prints): a page must render a malformed historical fact, not fail on it."""
    if value is None or value == "":
        return DASH
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return _euros(round_cents(amount)) if amount.is_finite() else str(value)


@lru_cache(maxsize=8192)
def _number(rounded: Decimal, decimals: int, grouping: bool) -> str:
    pattern = ("#,##0" if grouping else "0") + ("." + "0" * decimals if decimals else "")
    return _spaces(format_decimal(rounded, format=pattern, locale=LOCALE, group_separator=grouping))


def number(value: object, decimals: int = 0, *, grouping: bool = True) -> str:
    """A number with exactly ``decimals`` decimals, rounded half up: 1234567 → « 1 234 567 »,
    (2.5, 1) → « 2,5 »; ``grouping=False`` for a spreadsheet cell: (1234.5, 2) → « 1234,50 »."""
    exponent = Decimal(1).scaleb(-decimals)
    rounded = as_decimal(value).quantize(exponent, rounding=ROUND_HALF_UP)
    return _number(rounded if rounded else abs(rounded), decimals, grouping)


@lru_cache(maxsize=4096)
def _percent(points: Decimal, decimals: int | None) -> str:
    if decimals is None:  # up to two decimals, the trailing zeros dropped
        text = format_decimal(points, format="#,##0.##", locale=LOCALE)
    else:
        text = format_decimal(points, format="#,##0" + ("." + "0" * decimals if decimals else ""), locale=LOCALE)
    return _spaces(text) + NBSP + "%"


def percent(rate: object, decimals: int | None = None) -> str:
    """A rate given as a fraction: "0.0203" → « 2,03 % ». ``decimals=None``: up to two decimals of
    a point, trailing zeros dropped (« 70 % », « 0,55 % »); an int: exactly that many. Rounded
    half up."""
    points = as_decimal(rate) * 100
    points = points.quantize(Decimal(1).scaleb(-(2 if decimals is None else decimals)), rounding=ROUND_HALF_UP)
    return _percent(points if points else abs(points), decimals)


_ELIDING = frozenset("aeiouyàâäéèêëîïôöùûüœæAEIOUYÀÂÄÉÈÊËÎÏÔÖÙÛÜŒÆ")


def of_name(name: str) -> str:
    """« de » before a name, elided before a vowel: « de Léa Moreau », « d'Atelier Garonne ».

    A name beginning with h keeps « de »: whether its h is mute (« d'Hélène ») or aspirated
    (« de Hoche Industrie ») cannot be told from the spelling, and « de » is never wrong
    enough to mislead."""
    stripped = name.strip()
    return f"d'{stripped}" if stripped[:1] in _ELIDING else f"de {stripped}"


def _paris(value: datetime) -> datetime:
    # A naive instant is ambiguous (UTC? Paris?) and could shift a legal date by one day around
    # midnight: refuse it rather than guess.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"instant without a UTC offset: {value.isoformat()!r}")
    return value.astimezone(PARIS)


def _calendar_day(value: date | datetime) -> date:
    return _paris(value).date() if isinstance(value, datetime) else value


def day(value: date | datetime) -> str:
    """A calendar day (an instant is taken in Paris) → « 25/03/2021 »."""
    return format_date(_calendar_day(value), "dd/MM/yyyy", locale=LOCALE)


def instant(value: datetime, seconds: bool | None = False) -> str:
    """An aware instant as Paris wall time « 25/03/2021 09:00 »; ``seconds=True`` always adds the
    seconds (« 09:00:05 »), ``seconds=None`` only when there are any."""
    local = _paris(value)
    with_seconds = bool(local.second) if seconds is None else seconds
    return format_datetime(local, "dd/MM/yyyy HH:mm:ss" if with_seconds else "dd/MM/yyyy HH:mm", locale=LOCALE)


def long_date(value: date | datetime) -> str:
    """A day the way a letter writes it: « 9 avril 2021 », « 1er mars 2021 » (the first of the
    month is an ordinal in French; CLDR does not say so)."""
    d = _calendar_day(value)
    text = format_date(d, "d MMMM y", locale=LOCALE)
    return "1er" + text[1:] if d.day == 1 else text


def long_instant(value: datetime) -> str:
    """An aware instant the way a letter writes it: « 1er février 2021 à 10 h 00 » (Paris)."""
    local = _paris(value)
    return long_date(local.date()) + " à " + format_datetime(local, "H\u00a0'h'\u00a0mm", locale=LOCALE)


def siren(value: object) -> str:
    """A SIREN as people read it, in pages and letters alike: "479148702" -> « 479 148 702 »
    (groups of three, U+00A0). Anything that is not nine digits is shown as given. URLs and
    form inputs keep the raw digits."""
    text = str(value).replace(" ", "").replace(NBSP, "")
    if len(text) == 9 and text.isascii() and text.isdigit():
        return stdnum_siren.format(text, separator=NBSP)
    return str(value)
