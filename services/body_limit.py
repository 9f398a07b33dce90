"""The request body limits of both HTTP shells: a body over its limit is refused (413) before the
application parses it, from the Content-Length when given, else while the body streams in.

The shells differ only in the answer — the API a problem+json, the workspace a short French page —
so the middleware takes a `refuse` callback and knows nothing of either (the layers contract:
`web` may not import `api`). The file limit itself is `services.storage.MAX_UPLOAD_BYTES`, the one
place it is defined; the request limits here are derived from it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.storage import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB, MIB

# Room for the multipart envelope around a file; the file itself is checked exactly by the route.
ENVELOPE_BYTES = 256 * 1024
MAX_UPLOAD_REQUEST_BYTES = MAX_UPLOAD_BYTES + ENVELOPE_BYTES
MAX_JSON_REQUEST_BYTES = 2 * MIB
UPLOAD_SUFFIXES = ("/documents", "/messages")
# The workspace's upload forms (/ui/…/documents, /messages, /pieces) let a body up to twice the
# file limit through, so that the route's exact check answers with the form, what was typed kept
# and the refusal beside it (422); beyond that the shell's refusal answers.
WEB_PREFIX = "/ui/"
WEB_UPLOAD_SUFFIXES = ("/documents", "/messages", "/pieces")
MAX_WEB_UPLOAD_REQUEST_BYTES = 2 * MAX_UPLOAD_BYTES + ENVELOPE_BYTES


@dataclass(frozen=True)
class Refusal:
    """Why a body is refused, in the shells' common terms (a rule, a French sentence, a field)."""

    rule: str
    detail: str
    field: str | None = None
    status: int = 413


def file_too_large() -> Refusal:
    """A file over the limit, whether the route's exact check or the body's size tells it."""
    return Refusal("file_too_large", f"Fichier trop volumineux : {MAX_UPLOAD_MB} Mo au plus.", field="file")


def body_too_large(limit: int) -> Refusal:
    return Refusal("body_too_large", f"Contenu trop volumineux : {limit // MIB} Mo au plus pour cette requête.")


class BodyTooLarge(HTTPException):
    """Raised while the body streams in. An HTTPException, so that FastAPI lets it through its body
    parsing (anything else becomes a 400) and the app's own handlers answer it."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.status, refusal.detail)
        self.refusal = refusal


Refuse = Callable[[Scope, Refusal], Response]


def html_refusal(scope: Scope, refusal: Refusal) -> HTMLResponse:
    """The workspace's answer to a body too large to read: a short French page, a way back."""
    return HTMLResponse(
        '<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Envoi refusé — Usine</title></head>'
        f'<body><main><h1>Envoi refusé : trop volumineux</h1><p>{escape(refusal.detail)} Rien n\'a été '
        'enregistré.</p><p>Revenez à la page précédente (bouton « Retour » du navigateur) et choisissez un fichier '
        'plus petit.</p><p><a href="/ui/">Retour à l\'espace de travail</a></p></main></body></html>',
        status_code=refusal.status)


class BodyLimitMiddleware:
    """Pure ASGI: caps the body of POST, PUT and PATCH requests; `refuse` makes the shell's answer."""

    def __init__(self, app: ASGIApp, *, refuse: Refuse, default_limit: int = MAX_JSON_REQUEST_BYTES,
                 upload_limit: int = MAX_UPLOAD_REQUEST_BYTES,
                 upload_suffix: str | tuple[str, ...] = UPLOAD_SUFFIXES):
        self.app = app
        self.refuse = refuse
        self.default_limit = default_limit
        self.upload_limit = upload_limit
        self.upload_suffix = upload_suffix

    def limit_for(self, scope: Scope) -> int:
        path = scope["path"].rstrip("/")
        if scope["path"].startswith(WEB_PREFIX) and path.endswith(WEB_UPLOAD_SUFFIXES):
            return max(self.upload_limit, MAX_WEB_UPLOAD_REQUEST_BYTES)
        return self.upload_limit if path.endswith(self.upload_suffix) else self.default_limit

    def refusal_for(self, limit: int) -> Refusal:
        return file_too_large() if limit >= self.upload_limit else body_too_large(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope)
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

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(self.refusal_for(limit))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = self.refuse(scope, self.refusal_for(limit))
        response.headers["connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)
