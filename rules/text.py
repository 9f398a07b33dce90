"""Free text typed by people (a company name, a reason, a deliberation number, a file name…):
the one check every such input goes through, wherever it comes from (API, web form, command
line, scenario file).

Refused, with the rule id `text_forbidden_character` and a French message naming the field,
the character and its position:

- control characters: C0 (U+0000–U+001F), DEL (U+007F) and C1 (U+0080–U+009F) — a NUL byte is
  refused by PostgreSQL, the others are invisible noise that letters, PDFs and CSV files carry
  on; a multi-line text (a reason) keeps line feed, carriage return (a browser sends a textarea's
  lines as CR LF) and tab;
- Unicode bidirectional format characters (Unicode Standard Annex #9; CVE-2021-42574 « Trojan
  Source »): the embeddings and overrides U+202A–U+202E, the isolates U+2066–U+2069, the marks
  U+200E, U+200F and U+061C. A right-to-left override turns « \u202efdp.exe » into what reads
  « exe.pdf » on screen; none of them has a use in the French administrative text Usine keeps.

Pure: no I/O, no framework. The API's request schemas take their text patterns from here
(`LINE_PATTERN`, `TEXT_PATTERN`), and the API answers a mismatch with this module's message."""
from __future__ import annotations

import re

from rules.errors import RuleViolation

RULE = "text_forbidden_character"

# Character classes, written with \\uXXXX escapes that Python's `re` and the Rust regex engine of
# pydantic-core (the API's request validation) both read.
_CONTROLS_ALWAYS = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
_LINE_BREAKS_AND_TAB = r"\u0009\u000a\u000d"
_BIDI = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"

LINE_PATTERN = rf"^[^{_CONTROLS_ALWAYS}{_LINE_BREAKS_AND_TAB}{_BIDI}]*$"
TEXT_PATTERN = rf"^[^{_CONTROLS_ALWAYS}{_BIDI}]*$"
_FORBIDDEN_LINE = re.compile(rf"[{_CONTROLS_ALWAYS}{_LINE_BREAKS_AND_TAB}{_BIDI}]")
_FORBIDDEN_TEXT = re.compile(rf"[{_CONTROLS_ALWAYS}{_BIDI}]")
_BIDI_CHARS = re.compile(rf"[{_BIDI}]")

_NAMES = {
    "\u0000": "caractère nul", "\t": "tabulation", "\n": "saut de ligne", "\r": "retour chariot",
    "\u007f": "caractère de suppression (DEL)",
    "\u202a": "début d'enchâssement gauche-à-droite", "\u202b": "début d'enchâssement droite-à-gauche",
    "\u202c": "fin d'enchâssement", "\u202d": "forçage gauche-à-droite", "\u202e": "forçage droite-à-gauche",
    "\u2066": "isolat gauche-à-droite", "\u2067": "isolat droite-à-gauche", "\u2068": "isolat de première force",
    "\u2069": "fin d'isolat", "\u200e": "marque gauche-à-droite", "\u200f": "marque droite-à-gauche",
    "\u061c": "marque de lettre arabe",
}


def describe(char: str) -> str:
    """A French name for a forbidden character, with its code point: « forçage droite-à-gauche (U+202E) »."""
    code = f"U+{ord(char):04X}"
    if char in _NAMES:
        kind = _NAMES[char]
    elif _BIDI_CHARS.match(char):  # pragma: no cover - every one is named above
        kind = "caractère de mise en forme bidirectionnelle"
    else:
        kind = "caractère de contrôle"
    return f"{kind} ({code})"


def forbidden_character(value: str, *, multiline: bool = False) -> tuple[int, str] | None:
    """The first forbidden character of `value` and its position (1-based), or None."""
    found = (_FORBIDDEN_TEXT if multiline else _FORBIDDEN_LINE).search(value)
    return None if found is None else (found.start() + 1, found.group())


def forbidden_message(field: str, value: str, *, multiline: bool = False) -> str | None:
    """The French refusal for `value`, or None when it is acceptable."""
    found = forbidden_character(value, multiline=multiline)
    if found is None:
        return None
    position, char = found
    allowed = " (les sauts de ligne et tabulations sont permis)" if multiline else ""
    kind = "de mise en forme bidirectionnelle" if _BIDI_CHARS.match(char) else "de contrôle"
    return (f"{field} : caractère interdit en position {position}, {describe(char)} — les caractères "
            f"{kind} ne sont pas acceptés dans ce champ{allowed}.")


def check_text(value: str, field: str, *, multiline: bool = False) -> str:
    """`value` unchanged when it holds no forbidden character; else `RuleViolation`
    (`text_forbidden_character`, `field`). `multiline` lets line breaks and tabs through."""
    message = forbidden_message(field, value, multiline=multiline) if isinstance(value, str) else None
    if message is not None:
        raise RuleViolation(RULE, message, field=field)
    return value


def check_optional_text(value: str | None, field: str, *, multiline: bool = False) -> str | None:
    return None if value is None else check_text(value, field, multiline=multiline)

