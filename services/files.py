"""Uploaded files, whichever shell receives them (API, workspace, messages): the type is read
from the content (magic bytes), never from the name or the declared type; names are reduced to a
harmless base name; a download names its file for every browser."""
from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from rules.text import check_text
from services.office_package import inspect_package

ALLOWED = {
    "application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}
EXTENSIONS = {".pdf": "application/pdf", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
              ".odt": "application/vnd.oasis.opendocument.text",
              ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


def sniff(content: bytes) -> str | None:
    """The content type of an allowed file (PDF, JPEG, PNG, ODT, DOCX), or None. A ZIP that
    claims to be an office document is checked as a package (`services.office_package`): one
    that is not a real DOCX/ODT, a zip bomb, or one carrying macros raises its `RuleViolation`."""
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"PK\x03\x04"):
        return inspect_package(content)
    return None


_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*/\\]')


def safe_filename(raw: str | None, content_type: str, fallback: str) -> str:
    """A base name with no directory part, no control or reserved characters, not hidden, at
    most 120 characters, ending with the extension of the type found in the content. A name
    holding a control or bidirectional format character (« \u202efdp.exe ») is refused
    (`rules.text`, `text_forbidden_character`, field `filename`) rather than silently rewritten."""
    name = unicodedata.normalize("NFC", check_text(raw or "", "filename"))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name)
    name = " ".join(name.split()).lstrip(". ").rstrip(". ")
    expected = ALLOWED[content_type]
    stem, dot, ext = name.rpartition(".")
    if dot and EXTENSIONS.get("." + ext.lower()) == content_type:
        stem, ext = stem, "." + ext.lower()
    else:
        stem, ext = (stem if dot and 1 <= len(ext) <= 5 and ext.isalnum() else name), expected
    stem = stem.strip(" .") or fallback
    return stem[:110] + ext


def content_disposition(filename: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    ascii_name = re.sub(r'[^A-Za-z0-9._ ()-]', "_", ascii_name) or "document"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


__all__ = ["ALLOWED", "EXTENSIONS", "content_disposition", "safe_filename", "sniff"]
