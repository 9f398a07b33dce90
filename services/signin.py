"""Sign-in under attack: how many password checks run at once, how often an address or an
identifier may try, and the same answer for an account that does not exist (docs/security.md).

One `SigninGate` per application serves the API's `POST /auth/token`, the web sign-in and the
password changes (the current password is a sign-in). An attempt goes through, in order:

1. the client address's rate (`limits`, moving window, in this process's memory: with several
   API workers each counts its own share);
2. a slot among `concurrency` of this process (asyncio semaphore): up to `max_waiting` more
   wait for one at most `queue_wait_seconds` (no thread, no query while they wait), then get
   429; beyond them, 429 (every 429 that did not wait is held `refusal_delay_seconds` first:
   a client that loops on its refusals asks about once a second, not hundreds of times);
3. in the slot, the identifier's delay or lock, read from `signin_failures` (the database: one
   lock for every worker), for any identifier typed — an unknown name is delayed and locked
   exactly like an account, so neither the answer nor its timing tells them apart. The argon2
   check runs on this gate's own threads (at a lower CPU priority on Linux), never on the
   thread pool that every other route needs: a flood of wrong passwords no longer stalls an
   officer's reads;
4. the check itself (argon2id against the account's hash, or against a dummy hash of the same
   cost when there is no such account), outside any transaction (on SQLite the API serializes
   its transactions: a check inside one held every other request for its duration), then one
   short transaction that records the failure (and the next delay) or clears it.

Instants recorded in the database come from the service clock (the demo clock runs in real
time); the per-address window is real time (`limits`)."""
from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from starlette.concurrency import run_in_threadpool

from db.models_auth import SigninFailure, User
from services import users as users_service
from services.config import Settings

INVALID_MESSAGE = "Identifiant ou mot de passe incorrect, ou compte désactivé."


def _configured(name: str):
    # The defaults are the settings' (services.config, USINE_SIGNIN_*): written once, there.
    return Settings.model_fields[f"signin_{name}"].default


@dataclass(frozen=True)
class SigninPolicy:
    free_failures: int = _configured("free_failures")
    delay_base_seconds: float = _configured("delay_base_seconds")
    lock_after: int = _configured("lock_after")
    lock_seconds: int = _configured("lock_seconds")
    failure_window_seconds: int = _configured("failure_window_seconds")
    per_address: str = _configured("per_address")
    concurrency: int = _configured("concurrency")
    max_waiting: int = _configured("max_waiting")
    queue_wait_seconds: float = _configured("queue_wait_seconds")
    refusal_delay_seconds: float = _configured("refusal_delay_seconds")
    nice: int = _configured("nice")

    @classmethod
    def from_settings(cls, settings=None) -> "SigninPolicy":
        if settings is None:
            from services.config import get_settings

            settings = get_settings()
        policy = cls(**{f.name: getattr(settings, f"signin_{f.name}") for f in fields(cls)})
        policy.validate()
        return policy

    def validate(self) -> None:
        parse(self.per_address)  # raises ValueError on a malformed limit
        if self.concurrency < 1 or self.max_waiting < 0 or self.queue_wait_seconds < 0 or self.refusal_delay_seconds < 0:
            raise ValueError("USINE_SIGNIN_CONCURRENCY ≥ 1, USINE_SIGNIN_MAX_WAITING ≥ 0, "
                             "USINE_SIGNIN_QUEUE_WAIT_SECONDS ≥ 0, USINE_SIGNIN_REFUSAL_DELAY_SECONDS ≥ 0.")
        if not 1 <= self.lock_after or self.free_failures < 0 or self.lock_seconds < 1:
            raise ValueError("USINE_SIGNIN_LOCK_AFTER ≥ 1, USINE_SIGNIN_FREE_FAILURES ≥ 0, USINE_SIGNIN_LOCK_SECONDS ≥ 1.")

    def delay_after(self, failures: int) -> float | None:
        """Seconds before the next attempt is checked, after `failures` failures in a row."""
        if failures >= self.lock_after:
            return float(self.lock_seconds)
        if failures < self.free_failures:
            return None
        return min(self.delay_base_seconds * 2 ** (failures - self.free_failures), float(self.lock_seconds))


@dataclass(frozen=True)
class SignedIn:
    username: str
    role: str
    display_name: str
    token_version: int


@dataclass(frozen=True)
class Refusal:
    """`invalid` (400/401), or 429: `locked` (the identifier), `address`, `busy` (this process)."""

    reason: str
    message: str
    retry_after: int | None = None

    @property
    def rule(self) -> str:
        return {"invalid": "invalid_grant", "locked": "signin_locked", "address": "signin_rate_limited",
                "busy": "signin_busy"}[self.reason]

    @property
    def status(self) -> int:
        return 400 if self.reason == "invalid" else 429


def french_duration(seconds: int) -> str:
    if seconds < 60:
        return "1 seconde" if seconds <= 1 else f"{seconds} secondes"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    hours = math.ceil(minutes / 60)
    return "1 heure" if hours == 1 else f"{hours} heures"


def locked_refusal(retry_after: int) -> Refusal:
    return Refusal("locked", "Trop de tentatives de connexion infructueuses pour cet identifiant : il est "
                             f"bloqué pour l'instant, réessayez dans {french_duration(retry_after)}.", retry_after)


def _lower_priority(nice: int) -> None:
    if nice and hasattr(os, "setpriority"):
        try:  # Linux: a thread's own nice value (and that of the threads argon2 starts from it)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError:
            pass


def _key(username: str) -> str:
    return username[:80]


_EXECUTORS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_EXECUTORS_LOCK = threading.Lock()


def _executor(concurrency: int, nice: int) -> ThreadPoolExecutor:
    """The threads that check passwords, one pool a process for a given bound (apps built in one
    process, as the tests build them, share it; each gate keeps its own slots)."""
    with _EXECUTORS_LOCK:
        pool = _EXECUTORS.get((concurrency, nice))
        if pool is None:
            pool = _EXECUTORS[(concurrency, nice)] = ThreadPoolExecutor(
                max_workers=concurrency, thread_name_prefix="usine-signin", initializer=_lower_priority,
                initargs=(nice,))
        return pool


class SigninGate:
    def __init__(self, uow_factory, clock, policy: SigninPolicy | None = None):
        self.uow_factory, self.clock = uow_factory, clock
        self.policy = policy or SigninPolicy.from_settings()
        self._rate = parse(self.policy.per_address)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._executor = _executor(self.policy.concurrency, self.policy.nice)
        self._slots: tuple[object, asyncio.Semaphore] | None = None
        self._admitted = 0  # attempts checking or waiting for a slot, in this process

    # -- the steps ---------------------------------------------------------------------------

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.policy.concurrency))
        return self._slots[1]

    def _address_refusal(self, address: str) -> Refusal | None:
        if self._limiter.hit(self._rate, "signin", address or "?"):
            return None
        reset = self._limiter.get_window_stats(self._rate, "signin", address or "?").reset_time
        retry = max(1, math.ceil(reset - time.time()))
        return Refusal("address", "Trop de tentatives de connexion depuis cette adresse : réessayez dans "
                                  f"{french_duration(retry)}.", retry)

    def _read(self, key: str):
        """The account (or None) and the identifier's lock, in one short read."""
        with self.uow_factory() as uow:
            s = uow.session
            user = s.execute(select(User.username, User.role, User.display_name, User.password_hash, User.active,
                                    User.token_version).where(User.username == key)).first()
            locked_until = s.scalar(select(SigninFailure.locked_until).where(SigninFailure.username == key))
            now = self.clock.now()
            uow.rollback()
        if locked_until is not None and locked_until > now:
            return user, max(1, math.ceil((locked_until - now).total_seconds()))
        return user, None

    def _verify(self, stored_hash: str | None, password: str) -> tuple[bool, str | None]:
        """(the password matches, a new hash when the parameters changed). Runs on the gate's threads."""
        hasher = users_service.PASSWORD_HASHER
        try:
            hasher.verify(stored_hash if stored_hash is not None else users_service._dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, None
        if stored_hash is not None and hasher.check_needs_rehash(stored_hash):
            return True, hasher.hash(password)
        return True, None

    def _record(self, key: str, user, success: bool, rehash: str | None) -> SignedIn | Refusal:
        with self.uow_factory() as uow:
            s = uow.session
            now = self.clock.now()
            if success:
                s.execute(delete(SigninFailure).where(SigninFailure.username == key))
                if rehash is not None:
                    s.execute(update(User).where(User.username == key).values(password_hash=rehash))
                uow.commit()
                return SignedIn(user.username, user.role, user.display_name, user.token_version)
            failures = record_failure(s, key, now, self.policy)
            uow.commit()
        delay = self.policy.delay_after(failures)
        if delay is not None and failures >= self.policy.lock_after:
            # The attempt that locks says so (the next ones are refused before any check).
            return locked_refusal(int(delay))
        return Refusal("invalid", INVALID_MESSAGE)

    # -- the whole attempt -------------------------------------------------------------------

    async def attempt(self, username, password, address: str | None) -> SignedIn | Refusal:
        if not isinstance(username, str) or not isinstance(password, str) or not username \
                or len(password) > users_service.PASSWORD_MAX:
            return Refusal("invalid", INVALID_MESSAGE)
        refused = self._address_refusal(address or "")
        if refused is None:
            result, waited = await self._admitted_attempt(_key(username), password)
            if isinstance(result, SignedIn) or result.status != 429 or waited:
                return result
            refused = result
        # A 429 answered at once would let a client that loops ask again at once: every refusal
        # that did not already wait for a slot is held `refusal_delay_seconds` first (a timer of
        # the event loop: no thread, no query), which bounds what a looping client costs.
        if self.policy.refusal_delay_seconds:
            await asyncio.sleep(self.policy.refusal_delay_seconds)
        return refused

    async def _admitted_attempt(self, key: str, password: str) -> tuple[SignedIn | Refusal, bool]:
        """(the result, whether it waited for a slot)."""
        # Admission is checked and counted before any await: at most `concurrency` attempts in a
        # slot and `max_waiting` waiting, whatever the order in which the event loop runs them.
        # The database is read only in a slot: a flood waits (costing no thread, no query) and
        # is answered 429 after `queue_wait_seconds`.
        if self._admitted >= self.policy.concurrency + self.policy.max_waiting:
            return busy_refusal(), False
        semaphore = self._semaphore()
        self._admitted += 1
        try:
            if not semaphore.locked():
                await semaphore.acquire()  # free: no wait
            elif not self.policy.queue_wait_seconds:
                return busy_refusal(), False
            else:
                try:
                    await asyncio.wait_for(semaphore.acquire(), timeout=self.policy.queue_wait_seconds)
                except (TimeoutError, asyncio.TimeoutError):
                    return busy_refusal(), True
            try:
                user, locked_for = await run_in_threadpool(self._read, key)
                if locked_for is not None:
                    return locked_refusal(locked_for), False
                loop = asyncio.get_running_loop()
                ok, rehash = await loop.run_in_executor(self._executor, self._verify,
                                                        user.password_hash if user is not None else None, password)
            finally:
                semaphore.release()
        finally:
            self._admitted -= 1
        success = ok and user is not None and user.active
        return await run_in_threadpool(self._record, key, user, success, rehash), False

def busy_refusal() -> Refusal:
    return Refusal("busy", "Trop de connexions en cours de vérification : réessayez dans une seconde.", 1)


def record_failure(session, key: str, now: datetime, policy: SigninPolicy) -> int:
    """Count one failure of `key` (atomically: one upsert, the row locked until commit), set the
    delay before its next attempt, and return the failures in a row."""
    window_start = now - timedelta(seconds=policy.failure_window_seconds)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = SigninFailure.__table__
    stmt = insert(table).values(username=key, failures=1, last_failure_at=now, locked_until=None)
    stmt = stmt.on_conflict_do_update(index_elements=[table.c.username], set_={
        "failures": case((table.c.last_failure_at < window_start, 1), else_=table.c.failures + 1),
        "last_failure_at": now,
    }).returning(table.c.failures)
    failures = session.execute(stmt).scalar_one()
    delay = policy.delay_after(failures)
    if delay is not None:
        session.execute(update(table).where(table.c.username == key)
                        .values(locked_until=now + timedelta(seconds=delay)))
    return failures


def clear_failures(session, username: str) -> None:
    session.execute(delete(SigninFailure).where(SigninFailure.username == username))
