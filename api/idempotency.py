"""`Idempotency-Key` on POST requests: a retried request applies once, also across a crash.

The key is scoped to (key, user, route: method and path). Its row is inserted *inside the
transaction of the command it protects*, before the command runs, and the command's answer is
written on it *in that same transaction*, after the command returned and before the one commit
(the command's own `commit()` is held: `services.uow.UnitOfWork.hold_commit`). So a key is
either absent (its command never committed: a retry runs it, once) or holds the answer of the
command that committed with it — whatever kills the API or drops the connection in between.
A concurrent duplicate waits on the row's unique index (PostgreSQL) or on the database lock
(SQLite), then finds the key taken and is answered from it.

When the database connection fails, the request is settled on a new connection (`_settle`):
before the COMMIT was sent nothing was written (503, retry); after it, the key's stored answer
says whether it committed, and a command that committed is answered as it committed. Without a
key, the events the command appended (dossier, seq, hash) tell the same; a request whose outcome
cannot be read back at all answers 503 `outcome_unknown` (re-read before sending it again).

A refused request (4xx: a rule, a scope, a role) is recorded too, so a retry gets the same
answer; it changed nothing, so its answer is stored in a transaction of its own. Conflicts (409)
and server errors are not recorded, so the client may retry them with the same key. The same
key sent with a different request (body, If-Match) is refused with 422 `idempotency_key_reused`.
A bulk vote's votes are separate units of work: each vote's result is stored under a key of its
own (the request's key and the vote's rank) in the vote's transaction, the whole answer once
all are done (`api.routes_council`). A key whose row holds no answer can only have been left by
a version before this one: 409 `idempotency_answer_lost`, final (re-read the resource)."""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, PendingRollbackError
from sqlalchemy.orm.exc import StaleDataError

from api.deps import Bearer
from api.problems import Problem, database_unavailable, problem_response, response_for_exception
from db import models as m
from db.models_auth import IdempotencyKey
from rules.errors import ConcurrencyConflict, NotFound, RuleViolation
from services.commands import Actor
from services.events import appended_events

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")
REPLAYED_HEADER = "Idempotent-Replayed"
_KEPT_HEADERS = ("etag", "location", "content-type")
log = logging.getLogger("usine.api")


def fingerprint_of(payload: Any, if_match: str | None) -> str:
    text = json.dumps({"payload": payload, "if_match": if_match}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _headers_of(response: Response) -> dict:
    return {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}


def _body_of(response: Response) -> str:
    return response.body.decode("utf-8") if isinstance(response.body, (bytes, bytearray)) else str(response.body)


@dataclass
class Idempotency:
    key: str
    username: str
    route: str
    fingerprint: str
    clock: Any
    _row: IdempotencyKey | None = None

    @classmethod
    def from_request(cls, request: Request, actor: Actor, payload: Any, clock) -> "Idempotency | None":
        key = request.headers.get(HEADER)
        if key is None:
            return None
        if not KEY_PATTERN.match(key):
            raise Problem(422, f"{HEADER} : 1 à 200 caractères ASCII visibles.", rule="invalid_input", field=HEADER)
        route = f"{request.method} {request.url.path}"[:300]
        return cls(key, actor.name, route, fingerprint_of(payload, request.headers.get("if-match")), clock)

    def item(self, index: int) -> "Idempotency":
        """The key of one item of a bulk request (a vote of a bulk vote, a dossier of a bulk
        action): the request's key, on the route and the item's rank."""
        return Idempotency(self.key, self.username, f"{self.route}#{index}"[:300], self.fingerprint, self.clock)

    def _find(self, session) -> IdempotencyKey | None:
        return session.scalar(select(IdempotencyKey).where(
            IdempotencyKey.key == self.key, IdempotencyKey.username == self.username,
            IdempotencyKey.route == self.route))

    def replay(self, uow_factory, request: Request | None = None) -> Response | None:
        """The stored answer for this key, a problem when it cannot be replayed, or None."""
        with uow_factory() as uow:
            return self.replay_in(uow.session, request)

    def replay_in(self, session, request: Request | None = None) -> Response | None:
        """`replay`, read in a unit of work already open."""
        row = self._find(session)
        if row is None:
            return None
        if row.fingerprint != self.fingerprint:
            return problem_response(422, f"La clé « {self.key} » a déjà servi pour une autre requête sur cette ressource.",
                                    request=request, rule="idempotency_key_reused", field=HEADER)
        if row.status_code is None:
            # Committed without its answer: only a version before this one did that (it recorded
            # the answer in a second transaction, and a crash in between lost it). Its command
            # was applied; saying "in progress, retry" would be answered so forever.
            return problem_response(409, f"La requête de clé « {self.key} » a été enregistrée par une version "
                                         "précédente d'Usine, arrêtée avant d'en conserver la réponse : relisez la "
                                         "ressource avant de renvoyer la requête avec une nouvelle clé.",
                                    request=request, rule="idempotency_answer_lost", field=HEADER)
        headers = {**(row.headers or {}), REPLAYED_HEADER: "true"}
        return Response(content=row.body or "", status_code=row.status_code, headers=headers)

    def reserve(self, session) -> None:
        """Take the key inside the command's transaction (before the command runs): a concurrent
        duplicate waits on the row's unique index (PostgreSQL) or on the database lock (SQLite)."""
        self._row = IdempotencyKey(key=self.key, username=self.username, route=self.route,
                                   fingerprint=self.fingerprint, status_code=None, body=None, headers=None,
                                   created_at=self.clock.now())
        session.add(self._row)
        session.flush()

    def complete(self, response: Response) -> None:
        """Write the answer on the key reserved in this transaction, before it commits."""
        row = self._row
        row.status_code, row.body, row.headers = response.status_code, _body_of(response), _headers_of(response)
        row.completed_at = self.clock.now()

    def record(self, uow_factory, response: Response) -> None:
        """Store the answer (insert the row for a refusal, complete it after a success)."""
        headers, body = _headers_of(response), _body_of(response)
        with uow_factory() as uow:
            row = self._find(uow.session)
            now = self.clock.now()
            if row is None:
                row = IdempotencyKey(key=self.key, username=self.username, route=self.route,
                                     fingerprint=self.fingerprint, created_at=now)
                uow.session.add(row)
            elif row.status_code is not None:
                return
            row.status_code, row.body, row.headers, row.completed_at = response.status_code, body, headers, now
            try:
                uow.commit()
            except IntegrityError:  # a concurrent duplicate recorded its answer first
                uow.rollback()


def _stale_write(exc: BaseException) -> bool:
    """A concurrent writer got there first: the optimistic version check of a flush failed
    (possibly seen as the session's pending rollback when the command read the dossier again)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, StaleDataError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def current_version(uow_factory, dossier_id: int | None) -> int | None:
    if dossier_id is None:
        return None
    with uow_factory() as uow:
        d = uow.session.get(m.Dossier, dossier_id)
        return d.version if d is not None else None


Work = Callable[[Any], tuple[int, Any, dict]]


_FAULTS = (OperationalError, InterfaceError)
# After a fault, how many times the committed result is looked up (the pool renews its
# connections on a disconnect: the next checkout connects anew), and the pause between.
SETTLE_ATTEMPTS, SETTLE_PAUSE_SECONDS = 3, 0.2


def execute(request: Request, *, actor: Actor | None = None, bearer: Bearer | None = None, uow_factory, clock,
            payload: Any, work: Work, dossier_id: int | None = None) -> Response:
    """Run `work(uow)` (which calls one command and returns (status, body, headers)) in one unit
    of work, under the request's Idempotency-Key when it carries one, and answer.

    The command's own `commit()` is held (`UnitOfWork.hold_commit`): once it returned, its answer
    is stored under the key in the same transaction, then that transaction commits. A key is
    therefore either absent (the command never committed: a retry applies it, once) or holds the
    answer of the command that committed with it. When the database drops the connection, the
    committed result is looked up on a new one (`_settle`): a command that committed is answered
    as it committed, never with a 503.

    With `bearer` (`api.deps.bearer_with_roles`) instead of `actor`, the account is checked
    first in that same unit of work, then the key is looked up there: one connection and one
    transaction for the whole request; `work` finds the actor in `bearer.actor`. A refusal of
    the account (401, 403) is not recorded under the key."""
    idem = Idempotency.from_request(request, actor or bearer, payload, clock)
    if idem is not None and bearer is None:
        replayed = idem.replay(uow_factory, request)
        if replayed is not None:
            return replayed
    committing: Response | None = None  # the answer whose COMMIT was sent, once it was
    appended: tuple = ()
    try:
        with uow_factory() as uow:
            if bearer is not None:
                try:
                    bearer.authorize(request, uow.session)
                except Problem as exc:
                    return response_for_exception(exc, request)
                if idem is not None:
                    replayed = idem.replay_in(uow.session, request)
                    if replayed is not None:
                        return replayed
            if idem is not None:
                idem.reserve(uow.session)
            uow.hold_commit()
            status, body, headers = work(uow)
            response = JSONResponse(body, status_code=status, headers=headers)
            if not uow.commit_asked:
                # Nothing to commit: the answer alone, when there is a key to keep it under.
                uow.rollback()
                if idem is None:
                    return response
                idem.reserve(uow.session)
            if idem is not None:
                idem.complete(response)
            appended = appended_events(uow.session)
            committing = response
            uow.commit_held()
            return response
    except IntegrityError:
        if idem is not None:
            replayed = idem.replay(uow_factory, request)
            if replayed is not None:
                return replayed
        return problem_response(409, "Une autre requête a modifié cette ressource en même temps ; relisez-la et réessayez.",
                                request=request, rule="conflict",
                                current_version=current_version(uow_factory, dossier_id))
    except ConcurrencyConflict as exc:
        if idem is not None:
            replayed = idem.replay(uow_factory, request)
            if replayed is not None:
                return replayed
        actual = exc.actual if exc.actual >= 0 else current_version(uow_factory, exc.dossier_id or dossier_id)
        detail = (f"Le dossier a changé : version attendue {exc.expected}, version actuelle {actual}."
                  if exc.expected >= 0 else "Le dossier a été modifié en même temps par une autre requête ; relisez-le et réessayez.")
        return problem_response(409, detail, request=request, rule="conflict", field="If-Match" if exc.expected >= 0 else None,
                                current_version=actual)
    except (StaleDataError, PendingRollbackError) as exc:
        if not _stale_write(exc):
            raise
        if idem is not None:
            replayed = idem.replay(uow_factory, request)
            if replayed is not None:
                return replayed
        return problem_response(409, "Le dossier a été modifié en même temps par une autre requête ; relisez-le et réessayez.",
                                request=request, rule="conflict", current_version=current_version(uow_factory, dossier_id))
    except _FAULTS as exc:
        log.warning("database fault on %s %s%s: %s", request.method, request.url.path,
                    " (at the commit)" if committing is not None else "", getattr(exc, "orig", exc))
        return _settle(request, idem, uow_factory, committing, appended)
    except (RuleViolation, NotFound, Problem) as exc:
        response = response_for_exception(exc, request)
        if idem is not None and response.status_code != 409:
            idem.record(uow_factory, response)
        return response


def _settle(request: Request, idem: Idempotency | None, uow_factory, committing: Response | None,
            appended: tuple) -> Response:
    """The answer to a request whose connection failed. Before its COMMIT was sent nothing was
    written (the server rolls an interrupted transaction back): 503, retry. After it, the
    outcome is read back on a new connection: the key's stored answer, or the events the
    command appended. Only when that cannot be read either is the answer 503 with the outcome
    unknown — with a key, the retry is safe all the same (it is answered from what committed)."""
    if committing is None and idem is None:
        return database_unavailable(request)
    for attempt in range(SETTLE_ATTEMPTS):
        if attempt:
            time.sleep(SETTLE_PAUSE_SECONDS)
        try:
            with uow_factory() as uow:
                if idem is not None:
                    row = idem._find(uow.session)
                    if row is None:  # the command did not commit: nothing applied
                        return database_unavailable(request)
                    if (committing is not None and row.fingerprint == idem.fingerprint
                            and row.status_code == committing.status_code and row.body == _body_of(committing)):
                        return committing  # this request's own commit went through
                    return idem.replay_in(uow.session, request)
                if not appended:
                    break  # nothing to recognise the commit by
                found = sum(1 for dossier_id, seq, digest in appended if uow.session.scalar(
                    select(m.Event.id).where(m.Event.dossier_id == dossier_id, m.Event.seq == seq,
                                             m.Event.hash == digest)) is not None)
                if found == len(appended):
                    return committing
                if found == 0:
                    return database_unavailable(request)
                break  # cannot happen (one transaction): say the outcome is unknown
        except _FAULTS:
            continue
    if idem is not None:
        return problem_response(503, f"Base de données momentanément indisponible ; renvoyez la requête avec la même "
                                     f"clé « {idem.key} » : elle ne s'appliquera qu'une fois.",
                                request=request, field=HEADER, headers={"Retry-After": "1"})
    return problem_response(503, "La base de données a coupé la connexion pendant l'enregistrement : la commande a pu "
                                 "être appliquée. Relisez la ressource avant de la renvoyer (ou envoyez-la avec un "
                                 "en-tête Idempotency-Key).",
                            request=request, rule="outcome_unknown", headers={"Retry-After": "1"})
