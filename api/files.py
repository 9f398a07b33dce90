"""Uploaded files: the type is read from the content (magic bytes), never from the name or the
declared type; names are reduced to a harmless base name; bodies are capped before parsing."""
from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from starlette.requests import Request

from api.problems import Problem, response_for_exception
from rules.text import check_text
from services.office_package import inspect_package
from services.storage import MAX_UPLOAD_BYTES

MIB = 1024 * 1024
# Room for the multipart envelope around a 20 MiB file; the file itself is checked exactly.
MAX_UPLOAD_REQUEST_BYTES = MAX_UPLOAD_BYTES + 256 * 1024
MAX_JSON_REQUEST_BYTES = 2 * MIB

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


class BodyLimitMiddleware:
    """Refuses (413) a request body over its limit before the application parses it: from the
    Content-Length when given, else while the body streams in."""

    def __init__(self, app, *, default_limit: int = MAX_JSON_REQUEST_BYTES,
                 upload_limit: int = MAX_UPLOAD_REQUEST_BYTES,
                 upload_suffix: str | tuple[str, ...] = ("/documents", "/messages")):
        self.app = app
        self.default_limit = default_limit
        self.upload_limit = upload_limit
        self.upload_suffix = upload_suffix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        limit = self.upload_limit if scope["path"].rstrip("/").endswith(self.upload_suffix) else self.default_limit
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = limit + 1
            if size > limit:
                return await self._refuse(scope, receive, send, limit)
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(self._problem(limit))
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send, limit)

    def _problem(self, limit: int) -> Problem:
        return file_too_large() if limit == self.upload_limit else body_too_large(limit)

    async def _refuse(self, scope, receive, send, limit: int) -> None:
        response = response_for_exception(self._problem(limit), Request(scope))
        response.headers["connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)


def file_too_large() -> Problem:
    """A file over the limit, whether the route's exact check or the body's size tells it."""
    return Problem(413, f"Fichier trop volumineux : {MAX_UPLOAD_BYTES // MIB} Mo au plus.", rule="file_too_large",
                   field="file")


def body_too_large(limit: int) -> Problem:
    return Problem(413, f"Contenu trop volumineux : {limit // MIB} Mo au plus pour cette requête.",
                   rule="body_too_large")


class _TooLarge(Problem):
    """Raised while the body streams in; FastAPI lets an HTTPException through its body parsing
    and answers it with the app's handlers: the same problem as the middleware's own answer."""

    def __init__(self, problem: Problem):
        super().__init__(problem.status_code, str(problem.detail), rule=problem.rule, field=problem.field)
