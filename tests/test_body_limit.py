"""The body limit shared by both shells (`services.body_limit`): one middleware, one set of limits
derived from `services.storage.MAX_UPLOAD_BYTES`, each shell's answer given by its `refuse`."""
from __future__ import annotations

import ast
from pathlib import Path

from api_support import *  # noqa: F401,F403  (fixtures)
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from services import body_limit
from services.storage import MAX_UPLOAD_BYTES, MIB

ROOT = Path(__file__).resolve().parent.parent


def _echo_app(refuse) -> Starlette:
    async def echo(request: Request):
        return PlainTextResponse(str(len(await request.body())))

    app = Starlette(routes=[Route("/{path:path}", echo, methods=["POST"])])
    app.add_middleware(body_limit.BodyLimitMiddleware, refuse=refuse)
    return app


def _chunks(size: int):
    for _ in range(size // (64 * 1024)):
        yield b"x" * (64 * 1024)


def test_the_limits_derive_from_the_one_file_limit():
    assert body_limit.MAX_UPLOAD_REQUEST_BYTES == MAX_UPLOAD_BYTES + body_limit.ENVELOPE_BYTES
    assert body_limit.MAX_WEB_UPLOAD_REQUEST_BYTES == 2 * MAX_UPLOAD_BYTES + body_limit.ENVELOPE_BYTES
    assert body_limit.file_too_large().detail == f"Fichier trop volumineux : {MAX_UPLOAD_BYTES // MIB} Mo au plus."


def test_the_callback_answers_a_declared_and_a_streamed_body_alike():
    seen = []

    def refuse(scope, refusal):
        seen.append((scope["path"], refusal.rule))
        return PlainTextResponse(refusal.detail, status_code=refusal.status)

    client = TestClient(_echo_app(refuse))
    assert client.post("/commands", content=b"x" * MIB).text == str(MIB)
    declared = client.post("/commands", content=b"x" * (3 * MIB))
    streamed = client.post("/commands", content=_chunks(3 * MIB))
    assert declared.status_code == streamed.status_code == 413 and declared.text == streamed.text
    assert "2 Mo au plus pour cette requête" in declared.text
    assert client.post("/dossiers/1/documents", content=b"x" * (MAX_UPLOAD_BYTES + MIB)).status_code == 413
    assert seen[-1] == ("/dossiers/1/documents", "file_too_large")
    # The workspace's upload forms let twice the file limit through, for the route's exact check.
    assert client.post("/ui/dossiers/1/pieces", content=b"x" * (MAX_UPLOAD_BYTES + MIB)).status_code == 200


def test_the_workspace_built_alone_answers_with_its_french_page(uow_factory):
    from web.app import create_standalone_app

    client = TestClient(create_standalone_app(uow_factory=uow_factory, clock=_clock(), secret_key="s" * 32))
    r = client.post("/ui/login", content=b"x" * (3 * MIB), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")
    assert "Envoi refusé : trop volumineux" in r.text and "Contenu trop volumineux : 2 Mo au plus" in r.text


def test_a_streamed_body_over_the_limit_gets_the_same_french_page_not_an_error(uow_factory):
    # No Content-Length (chunked): the limit is met while the form is being read.
    from web.app import create_standalone_app

    client = TestClient(create_standalone_app(uow_factory=uow_factory, clock=_clock(), secret_key="s" * 32),
                        raise_server_exceptions=False)
    r = client.post("/ui/login", content=_chunks(3 * MIB), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")
    assert "Contenu trop volumineux : 2 Mo au plus" in r.text


def _clock():
    from services import runtime

    return runtime.default_clock()


def test_the_shared_middleware_imports_neither_shell():
    tree = ast.parse((ROOT / "services" / "body_limit.py").read_text(encoding="utf-8"))
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in modules if m and m.split(".")[0] in ("api", "web")}
    assert "ignore_imports" not in (ROOT / ".importlinter").read_text(encoding="utf-8")
