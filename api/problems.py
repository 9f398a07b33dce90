"""Errors as `application/problem+json` (RFC 9457).

Every error answer carries `type`, `title`, `status`, `detail`, `instance`, and the extension
members `rule` (the rule id of SCENARIOS.md, or an API rule such as `unauthenticated`) and
`field` (the input that is wrong, when there is one).

Mapping:
- `RuleViolation` → 422 with its rule id; `not_allowed` → 409 when the dossier's state forbids
  the command (field `do`), 403 when the role does (field `as`);
- `ConcurrencyConflict` (stale `If-Match`, or a concurrent writer) → 409 `conflict` with the
  dossier's `current_version`;
- `NotFound`, or a dossier out of the caller's scope → 404 `not_found` (never revealing that it
  exists);
- request validation → 422 `invalid_input` naming the field (and every wrong field in `errors`).
"""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from rules.errors import ConcurrencyConflict, NotFound, RuleViolation
from services.body_limit import BodyTooLarge
from services.wording import RULE_TITLES, STATUS_TITLES

log = logging.getLogger("usine.api")
PROBLEM_JSON = "application/problem+json"

# The titles are French wording, kept with the rules' names in services/wording.py (one module
# of what people read); the API answers with them.
TITLES = STATUS_TITLES


class FieldError(BaseModel):
    field: str = Field(description="Chemin du champ (ex. `company.siren`, `kinds[0]`)")
    message: str
    location: str = Field(description="body, query, path, header ou form")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, with Usine's `rule` and `field` extension members."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "/problems/advance_cap", "title": "Plafond d'avance dépassé", "status": 422,
        "detail": "L'avance demandée (9000.00 €) dépasse 70 % de l'aide votée pour la phase 2 (8400.00 €).",
        "instance": "/dossiers/12/commands/claim_payment", "rule": "advance_cap", "field": "amount"}]})

    type: str = Field(description="URI du type de problème : `/problems/<rule>` ou `about:blank`")
    title: str
    status: int
    detail: str
    instance: str | None = None
    rule: str | None = Field(None, description="Identifiant de la règle (SCENARIOS.md « Rule ids », ou règle de l'API)")
    field: str | None = Field(None, description="Le champ en cause, quand il y en a un")
    current_version: int | None = Field(None, description="Version actuelle du dossier (conflits 409)")
    errors: list[FieldError] | None = None


class Problem(HTTPException):
    """An error to answer as problem+json. Subclasses HTTPException, so it is answered even by a
    router included without these handlers."""

    def __init__(self, status: int, detail: str, *, rule: str | None = None, field: str | None = None,
                 title: str | None = None, headers: dict[str, str] | None = None, **extensions: Any):
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.rule = rule
        self.field = field
        self.title = title
        self.extensions = extensions


def problem_body(status: int, detail: str, *, rule: str | None = None, field: str | None = None,
                 title: str | None = None, instance: str | None = None, **extensions: Any) -> dict:
    body = {
        "type": f"/problems/{rule}" if rule else "about:blank",
        "title": title or (RULE_TITLES.get(rule) if rule else None) or TITLES.get(status, "Erreur"),
        "status": status, "detail": detail, "instance": instance, "rule": rule, "field": field,
    }
    body.update({k: v for k, v in extensions.items() if v is not None})
    return jsonable_encoder(body)


def problem_response(status: int, detail: str, *, request: Request | None = None,
                     headers: dict[str, str] | None = None, **kwargs: Any) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return JSONResponse(problem_body(status, detail, instance=instance, **kwargs), status_code=status,
                        media_type=PROBLEM_JSON, headers=headers)


def status_for_violation(exc: RuleViolation) -> int:
    if exc.rule == "not_allowed":
        return 403 if exc.field == "as" else 409
    return 422


def response_for_exception(exc: Exception, request: Request | None = None) -> JSONResponse:
    """The problem answer for a domain exception (also used for per-item results and replays)."""
    if isinstance(exc, Problem):
        return problem_response(exc.status_code, str(exc.detail), request=request, rule=exc.rule, field=exc.field,
                                title=exc.title, headers=exc.headers, **exc.extensions)
    if isinstance(exc, BodyTooLarge):  # a body cut while it streamed in (services.body_limit)
        r = exc.refusal
        return problem_response(r.status, r.detail, request=request, rule=r.rule, field=r.field)
    if isinstance(exc, RuleViolation):
        details = {k: v for k, v in (exc.details or {}).items() if k not in ("type", "title", "status", "detail")}
        return problem_response(status_for_violation(exc), exc.message, request=request, rule=exc.rule,
                                field=exc.field, **details)
    if isinstance(exc, ConcurrencyConflict):
        return problem_response(409, str(exc), request=request, rule="conflict", field="If-Match",
                                current_version=exc.actual if exc.actual >= 0 else None)
    if isinstance(exc, NotFound):
        return problem_response(404, "Ressource introuvable.", request=request, rule="not_found")
    raise exc


_FR_MESSAGES = {
    "missing": "champ obligatoire", "extra_forbidden": "champ inconnu",
    "string_too_long": "texte trop long", "string_too_short": "texte trop court",
    "string_pattern_mismatch": "format invalide", "string_type": "texte attendu (entre guillemets)",
    "int_type": "entier attendu (un nombre JSON sans guillemets ni décimales)", "int_parsing": "entier attendu",
    "bool_type": "vrai ou faux attendu (true ou false, sans guillemets)",
    "bool_parsing": "vrai ou faux attendu", "greater_than_equal": "valeur trop petite",
    "less_than_equal": "valeur trop grande", "greater_than": "valeur trop petite", "less_than": "valeur trop grande",
    "too_long": "liste trop longue", "too_short": "liste trop courte", "list_type": "liste attendue",
    "literal_error": "valeur non permise", "enum": "valeur non permise", "date_from_datetime_parsing": "date AAAA-MM-JJ attendue",
    "date_parsing": "date AAAA-MM-JJ attendue", "date_type": "date AAAA-MM-JJ attendue",
    "json_invalid": "JSON invalide", "model_attributes_type": "objet attendu", "dict_type": "objet attendu",
    "model_type": "objet attendu", "int_from_float": "entier attendu", "value_error": "valeur invalide",
}


def _field_path(loc: tuple) -> tuple[str, str]:
    location = str(loc[0]) if loc else "body"
    parts = list(loc[1:]) if len(loc) > 1 else []
    path = ""
    for p in parts:
        path += f"[{p}]" if isinstance(p, int) else (f".{p}" if path else str(p))
    return location, path or location


def _forbidden_character(err: dict, field: str) -> str | None:
    """The `rules.text` refusal when a text field failed its pattern for a forbidden character."""
    from rules.text import LINE_PATTERN, TEXT_PATTERN, forbidden_message

    pattern = (err.get("ctx") or {}).get("pattern")
    value = err.get("input")
    if err.get("type") != "string_pattern_mismatch" or pattern not in (LINE_PATTERN, TEXT_PATTERN) \
            or not isinstance(value, str):
        return None
    return forbidden_message(field, value, multiline=pattern == TEXT_PATTERN)


def validation_problem(exc: RequestValidationError, request: Request) -> JSONResponse:
    errors = []
    rule, detail = "invalid_input", None
    for err in exc.errors()[:20]:
        location, field = _field_path(tuple(err.get("loc", ())))
        message = _FR_MESSAGES.get(err.get("type", ""), err.get("msg", "valeur invalide"))
        forbidden = _forbidden_character(err, field)
        if forbidden is not None:
            message = forbidden.split(" : ", 1)[1].rstrip(".")
            if not errors:
                rule, detail = "text_forbidden_character", forbidden
        errors.append({"field": field, "message": message, "location": location})
    first = errors[0] if errors else {"field": "body", "message": "requête invalide", "location": "body"}
    more = f" (et {len(errors) - 1} autre(s) erreur(s))" if len(errors) > 1 else ""
    if detail is not None:
        detail = detail.rstrip(".") + f"{more}."
    return problem_response(422, detail or f"{first['field']} : {first['message']}{more}.", request=request,
                            rule=rule, field=first["field"], errors=errors)


def database_unavailable(request: Request) -> JSONResponse:
    return problem_response(503, "Base de données momentanément indisponible ; réessayez.", request=request,
                            headers={"Retry-After": "1"})


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return validation_problem(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if isinstance(exc, (Problem, BodyTooLarge)):
            return response_for_exception(exc, request)
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Erreur")
        if exc.status_code == 400:
            # Not JSON (or not a form) at all: a validation error of the body as a whole.
            return problem_response(422, "body : le corps de la requête n'est pas lisible (JSON ou formulaire invalide).",
                                    request=request, rule="invalid_input", field="body",
                                    errors=[{"field": "body", "message": "corps illisible", "location": "body"}])
        if exc.status_code == 404 and detail == "Not Found":
            detail = "Ressource introuvable."
        elif exc.status_code == 405:
            detail = "Méthode non autorisée pour cette ressource."
        return problem_response(exc.status_code, detail, request=request, headers=getattr(exc, "headers", None),
                                rule="not_found" if exc.status_code == 404 else None)

    @app.exception_handler(RuleViolation)
    async def _rule(request: Request, exc: RuleViolation):
        return response_for_exception(exc, request)

    @app.exception_handler(ConcurrencyConflict)
    async def _conflict(request: Request, exc: ConcurrencyConflict):
        return response_for_exception(exc, request)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound):
        return response_for_exception(exc, request)

    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, exc: OperationalError):
        # The database dropped the connection (a restart) or cannot be reached: the pool renews
        # its connections on such an error, so the same request a moment later succeeds.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
        return database_unavailable(request)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(500, "Erreur interne : l'incident est journalisé.", request=request)


def problem_responses(*statuses: int) -> dict:
    """OpenAPI `responses` entries for problem answers (also replaces FastAPI's default 422)."""
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    out: dict = {}
    for status in statuses:
        out[status] = {"description": TITLES.get(status, "Erreur"), "content": content}
    return out
