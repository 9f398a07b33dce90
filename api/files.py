"""The API's body limit: `services.body_limit` with the API's refusal, a problem+json. The limits,
the byte counting and the workspace's French page are there, shared with the workspace built
alone; the checks of a file itself (type from the content, harmless names) are `services.files`."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Scope

from api.problems import Problem, response_for_exception
from services import body_limit
from services.body_limit import WEB_PREFIX, Refusal, html_refusal


def problem(refusal: Refusal) -> Problem:
    return Problem(refusal.status, refusal.detail, rule=refusal.rule, field=refusal.field)


def file_too_large() -> Problem:
    """A file over the limit, whether the route's exact check or the body's size tells it."""
    return problem(body_limit.file_too_large())


def refuse(scope: Scope, refusal: Refusal) -> Response:
    # The workspace is mounted in the API app, under this middleware: its pages keep their French page.
    if scope["path"].startswith(WEB_PREFIX):
        return html_refusal(scope, refusal)
    return response_for_exception(problem(refusal), Request(scope))


class BodyLimitMiddleware(body_limit.BodyLimitMiddleware):
    """`services.body_limit.BodyLimitMiddleware` answering the API's way."""

    def __init__(self, app: ASGIApp, **limits):
        super().__init__(app, refuse=refuse, **limits)
