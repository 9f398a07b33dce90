"""Uploaded files at the API: bodies are capped before parsing (the checks of a file itself — type
from the content, harmless names — are `services.files`, shared with the workspace)."""
from __future__ import annotations

from markupsafe import escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from api.problems import Problem, response_for_exception
from services.files import ALLOWED, EXTENSIONS, content_disposition, safe_filename, sniff  # noqa: F401  (the API's routes)
from services.storage import MAX_UPLOAD_BYTES

MIB = 1024 * 1024
# Room for the multipart envelope around a 20 MiB file; the file itself is checked exactly.
MAX_UPLOAD_REQUEST_BYTES = MAX_UPLOAD_BYTES + 256 * 1024
MAX_JSON_REQUEST_BYTES = 2 * MIB
# The workspace's upload forms (/ui/…/documents, /messages, /pieces) let a body up to twice the
# file limit through, so that the route's exact check answers with the form, what was typed kept
# and the refusal beside it (422); beyond that a short French page answers, not JSON.
WEB_PREFIX = "/ui/"
WEB_UPLOAD_SUFFIXES = ("/documents", "/messages", "/pieces")
MAX_WEB_UPLOAD_REQUEST_BYTES = 2 * MAX_UPLOAD_BYTES + 256 * 1024

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
        path = scope["path"].rstrip("/")
        if scope["path"].startswith(WEB_PREFIX) and path.endswith(WEB_UPLOAD_SUFFIXES):
            limit = max(self.upload_limit, MAX_WEB_UPLOAD_REQUEST_BYTES)
        else:
            limit = self.upload_limit if path.endswith(self.upload_suffix) else self.default_limit
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
        return file_too_large() if limit >= self.upload_limit else body_too_large(limit)

    async def _refuse(self, scope, receive, send, limit: int) -> None:
        if scope["path"].startswith(WEB_PREFIX):
            response: Response = _web_refusal(self._problem(limit))
        else:
            response = response_for_exception(self._problem(limit), Request(scope))
        response.headers["connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)


def _web_refusal(problem: Problem) -> HTMLResponse:
    """The workspace's answer to a body too large to read: a short French page, a way back."""
    return HTMLResponse(
        '<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Envoi refusé — Usine</title></head>'
        f'<body><main><h1>Envoi refusé : trop volumineux</h1><p>{escape(str(problem.detail))} Rien n\'a été '
        'enregistré.</p><p>Revenez à la page précédente (bouton « Retour » du navigateur) et choisissez un fichier '
        'plus petit.</p><p><a href="/ui/">Retour à l\'espace de travail</a></p></main></body></html>',
        status_code=413)


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
