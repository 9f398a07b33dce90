"""Users: who may sign in, with which role (SPEC §1) and which scope.

Passwords are hashed with argon2id (argon2-cffi); nothing stores or logs a clear password. There
is no default password: the only known passwords are the demo users' (`seed_demo_users`), meant
for a demo or training workspace and listed in the docs.

Each function that changes something is its own unit of work and commits, like the commands."""
from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models_auth import REGIONAL_ROLES, ROLES, User
from rules.errors import InvalidInput, NotFound, RuleViolation
from rules.identifiers import InvalidIdentifier, validate_siren
from rules.text import check_text
from services.clock import Clock, SystemClock
from services.commands import Actor
from services.uow import UnitOfWork

# argon2id with argon2-cffi's defaults (RFC 9106 "low memory" profile: t=3, m=64 MiB, p=4).
PASSWORD_HASHER = PasswordHasher()
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
PASSWORD_MIN = 10
PASSWORD_MAX = 256

# The companies the demo's applicants act for (Luhn-valid SIRENs). The demo loader creates
# dossiers for them so that `entreprise.garonne` and `entreprise.gironde` have something to see.
DEMO_APPLICANT_SIRENS = ("732829320", "443061841")
# The demo applicants' companies, as their candidacies name them (one SIREN, one name).
DEMO_COMPANIES = {
    "732829320": {"name": "Atelier Garonne SAS", "email": "contact@atelier-garonne.example.fr"},
    "443061841": {"name": "Gironde Usinage SARL", "email": "contact@gironde-usinage.example.fr"},
}
# The one password of every demo user. Demo and training workspaces only.
DEMO_PASSWORD = "demo-usine-2022"
DEMO_USERS = (
    {"username": "admin", "display_name": "Administratrice Usine", "role": "admin"},
    {"username": "agent.occitanie", "display_name": "Claire Martin, chargée de mission (Occitanie)",
     "role": "officer", "regions": ["Occitanie"]},
    {"username": "agent.nouvelle-aquitaine", "display_name": "Hugo Bernard, chargé de mission (Nouvelle-Aquitaine)",
     "role": "officer", "regions": ["Nouvelle-Aquitaine"]},
    {"username": "cheffe.occitanie", "display_name": "Mme Roux, cheffe de service (Occitanie)",
     "role": "head", "regions": ["Occitanie"]},
    {"username": "finances.occitanie", "display_name": "Service financier (Occitanie)",
     "role": "finance", "regions": ["Occitanie"]},
    {"username": "agent.pays-de-la-loire", "display_name": "Léa Moreau, chargée de mission (Pays de la Loire)",
     "role": "officer", "regions": ["Pays de la Loire"]},
    {"username": "chef.pays-de-la-loire", "display_name": "M. Lefèvre, chef de service (Pays de la Loire)",
     "role": "head", "regions": ["Pays de la Loire"]},
    {"username": "finances.pays-de-la-loire", "display_name": "Service financier (Pays de la Loire)",
     "role": "finance", "regions": ["Pays de la Loire"]},
    {"username": "cheffe.nouvelle-aquitaine", "display_name": "Mme Garcia, cheffe de service (Nouvelle-Aquitaine)",
     "role": "head", "regions": ["Nouvelle-Aquitaine"]},
    {"username": "finances.nouvelle-aquitaine", "display_name": "Service financier (Nouvelle-Aquitaine)",
     "role": "finance", "regions": ["Nouvelle-Aquitaine"]},
    {"username": "audit.occitanie", "display_name": "Contrôle régional (Occitanie)",
     "role": "auditor", "regions": ["Occitanie"]},
    {"username": "entreprise.garonne", "display_name": "Mme Durand (Atelier Garonne SAS)",
     "role": "applicant", "siren": DEMO_APPLICANT_SIRENS[0]},
    {"username": "entreprise.gironde", "display_name": "M. Petit (Gironde Usinage)",
     "role": "applicant", "siren": DEMO_APPLICANT_SIRENS[1]},
    {"username": "cabinet.midi", "display_name": "Cabinet Midi Conseil", "role": "consultant",
     "consultant": "Cabinet Midi Conseil"},
)

# Verifying against this hash when the user does not exist keeps the answer time the same for
# an unknown user and a wrong password (no user enumeration by timing).
_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = PASSWORD_HASHER.hash("usine: no such user")
    return _DUMMY_HASH


def user_view(user: User) -> dict:
    """What may be shown about a user (never the hash)."""
    return {
        "username": user.username, "display_name": user.display_name, "role": user.role,
        "regions": list(user.regions or []), "siren": user.siren, "consultant": user.consultant,
        "active": user.active, "created_at": user.created_at.isoformat(),
        "disabled_at": user.disabled_at.isoformat() if user.disabled_at else None,
        "password_changed_at": user.password_changed_at.isoformat() if user.password_changed_at else None,
    }


def actor_for(user) -> Actor:
    """The Actor the services receive for this user (a User, or a row of its columns): its
    username (recorded in the events), its role and its scope. Regional roles always carry a
    tuple (possibly empty: sees nothing)."""
    return Actor(
        name=user.username, role=user.role,
        siren=user.siren if user.role == "applicant" else None,
        consultant=user.consultant if user.role == "consultant" else None,
        regions=tuple(user.regions or ()) if user.role in REGIONAL_ROLES else None,
    )


_ACTIVE_USER = (select(User.username, User.role, User.regions, User.siren, User.consultant, User.token_version)
                .where(User.username == bindparam("username"), User.active.is_(True)))


def active_actor(connection, username: str, token_version: int | None = None) -> Actor | None:
    """The Actor of an active user, or None, read on `connection` (a Connection, or a Session:
    then on its connection, in its transaction, without the ORM's statement handling — the API's
    commands read it so). With `token_version` (a token's `ver` claim), also None when the
    account's version has moved on since (password changed, disabled, signed out everywhere):
    the same one query, so the revocation holds in every worker, whatever it remembers of the
    token's signature."""
    if isinstance(connection, Session):
        connection = connection.connection()
    row = connection.execute(_ACTIVE_USER, {"username": username}).first()
    if row is None or (token_version is not None and row.token_version != token_version):
        return None
    return actor_for(row)


def load_actor(uow_factory, username: str, token_version: int | None = None) -> Actor | None:
    """The Actor of an active user whose token version is `token_version`, or None: what every
    API request checks. One light query on a pooled connection (no ORM session) when the factory
    exposes its engine."""
    engine = getattr(uow_factory, "engine", None)
    if engine is None:
        with uow_factory() as uow:
            user = get_user(uow, username)
            if user is None or not user.active or (token_version is not None and user.token_version != token_version):
                return None
            return actor_for(user)
    lock = getattr(uow_factory, "lock", None)  # a factory that serializes its transactions
    if lock is not None:
        lock.acquire()
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                # One read, no transaction to open and roll back: two round trips fewer a request.
                # (SQLite keeps its BEGIN IMMEDIATE discipline: see db/engine.py.)
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            return active_actor(conn, username, token_version)
    finally:
        if lock is not None:
            lock.release()


def known_regions(uow: UnitOfWork) -> list[str]:
    return sorted({p.region for p in uow.catalogue.all()})


def checked_regions(uow: UnitOfWork, role: str, regions) -> list[str]:
    """The regions of an account of ``role``, without repeats: at least one, each known, for a
    regional role; none for the others. Shared by local accounts and OpenID sign-ins."""
    regions = list(dict.fromkeys(regions or []))
    if role in REGIONAL_ROLES:
        if not regions:
            raise InvalidInput("regions", f"regions : au moins une région pour le rôle « {role} ».")
        known = known_regions(uow)
        for i, r in enumerate(regions):
            if r not in known:
                raise InvalidInput(f"regions[{i}]", f"regions[{i}] : région inconnue « {r} » (connues : {', '.join(known)}).")
    elif regions:
        raise InvalidInput("regions", f"regions : le rôle « {role} » n'a pas de régions.")
    return regions


def _check_password(password) -> str:
    if not isinstance(password, str) or not (PASSWORD_MIN <= len(password) <= PASSWORD_MAX):
        raise InvalidInput("password", f"password : de {PASSWORD_MIN} à {PASSWORD_MAX} caractères.", rule="password_policy")
    if password.strip() != password or len(set(password)) < 4:
        raise InvalidInput("password", "password : mot de passe trop simple (espaces en bord, ou moins de 4 caractères différents).",
                           rule="password_policy")
    return password


def create_user(*, uow: UnitOfWork, clock: Clock, username: str, password: str, role: str,
                display_name: str | None = None, regions: list[str] | tuple[str, ...] | None = None,
                siren: str | None = None, consultant: str | None = None) -> dict:
    """Create one active user. The scope must fit the role: regions for officer, head, finance
    and auditor; a SIREN for an applicant; the consultant's name for a consultant."""
    if not isinstance(username, str) or not USERNAME_PATTERN.match(username):
        raise InvalidInput("username", "username : 2 à 80 caractères parmi a-z, 0-9, « . », « _ », « - », "
                           "commençant par une lettre ou un chiffre.")
    if role not in ROLES:
        raise InvalidInput("role", f"role : « {role} » n'est pas l'un de {', '.join(ROLES)}.")
    _check_password(password)
    regions = checked_regions(uow, role, regions)
    if role == "applicant":
        try:
            siren = validate_siren(siren if siren is not None else "")
        except InvalidIdentifier as exc:
            raise InvalidInput("siren", exc.message, rule=exc.rule) from None
    elif siren is not None:
        raise InvalidInput("siren", "siren : seul un compte « applicant » est rattaché à une entreprise.")
    if role == "consultant":
        if not isinstance(consultant, str) or not consultant.strip() or len(consultant) > 200:
            raise InvalidInput("consultant", "consultant : le nom du prestataire référencé est obligatoire (200 caractères au plus).")
        consultant = check_text(consultant, "consultant").strip()
    elif consultant is not None:
        raise InvalidInput("consultant", "consultant : seul un compte « consultant » porte un nom de prestataire.")
    display_name = check_text(display_name or username, "display_name").strip()
    if not display_name or len(display_name) > 200:
        raise InvalidInput("display_name", "display_name : 1 à 200 caractères.")
    if uow.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise RuleViolation("username_taken", f"L'identifiant « {username} » est déjà pris.", field="username")
    user = User(username=username, display_name=display_name, password_hash=PASSWORD_HASHER.hash(password),
                role=role, regions=regions, siren=siren, consultant=consultant, active=True,
                created_at=clock.now(), token_version=0)
    uow.session.add(user)
    try:
        uow.commit()
    except IntegrityError:
        uow.rollback()
        raise RuleViolation("username_taken", f"L'identifiant « {username} » est déjà pris.", field="username") from None
    return user_view(user)


def get_user(uow: UnitOfWork, username: str) -> User | None:
    return uow.session.scalar(select(User).where(User.username == username))


def authenticate(*, uow: UnitOfWork, username: str, password: str) -> User | None:
    """The active user with this password, or None (unknown user, wrong password, disabled)."""
    user = get_user(uow, username) if isinstance(username, str) and len(username) <= 80 else None
    if not isinstance(password, str) or len(password) > PASSWORD_MAX:
        return None
    try:
        PASSWORD_HASHER.verify(user.password_hash if user is not None else _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if PASSWORD_HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = PASSWORD_HASHER.hash(password)
        uow.commit()
    return user


def _revoke(uow: UnitOfWork, user: User) -> None:
    """End every token and web session issued to `user` so far (in the caller's transaction)."""
    from db.models_auth import WebSession

    user.token_version = (user.token_version or 0) + 1
    uow.session.execute(delete(WebSession).where(WebSession.username == user.username))


def disable_user(*, uow: UnitOfWork, clock: Clock, username: str) -> dict:
    """Disable a user: it can no longer sign in, and its tokens and web sessions stop working at
    once (its version moves on: re-enabling it does not bring them back)."""
    user = get_user(uow, username)
    if user is None:
        raise NotFound("utilisateur", username)
    if user.active:
        user.active = False
        user.disabled_at = clock.now()
        _revoke(uow, user)
        uow.commit()
    return user_view(user)


def enable_user(*, uow: UnitOfWork, clock: Clock, username: str) -> dict:
    """Re-enable a disabled user: it signs in again with its password (its failed attempts are
    forgotten); the tokens and sessions it had before the disable stay ended."""
    from services.signin import clear_failures

    user = get_user(uow, username)
    if user is None:
        raise NotFound("utilisateur", username)
    if not user.active:
        user.active = True
        user.disabled_at = None
        clear_failures(uow.session, username)
        uow.commit()
    return user_view(user)


def change_password(*, uow_factory, clock: Clock, username: str, password: str) -> dict:
    """Set a new password (the policy of `create_user`): every token and web session issued
    before ends, the failed attempts are forgotten. The hash is computed before the unit of work
    (argon2 takes tens of ms: on SQLite the API serializes its transactions)."""
    from services.signin import clear_failures

    _check_password(password)
    new_hash = PASSWORD_HASHER.hash(password)
    with uow_factory() as uow:
        user = get_user(uow, username)
        if user is None:
            raise NotFound("utilisateur", username)
        user.password_hash = new_hash
        user.password_changed_at = clock.now()
        _revoke(uow, user)
        clear_failures(uow.session, username)
        uow.commit()
        return user_view(user)


def account_version(uow_factory, username: str) -> int:
    """The account's current token version (what a new token or web session records)."""
    with uow_factory() as uow:
        user = get_user(uow, username)
        if user is None:
            raise NotFound("utilisateur", username)
        return user.token_version


def end_all_sessions(*, uow_factory, username: str) -> int:
    """« Se déconnecter partout »: every token and web session of the account ends. Returns the
    account's new version."""
    with uow_factory() as uow:
        user = get_user(uow, username)
        if user is None:
            raise NotFound("utilisateur", username)
        _revoke(uow, user)
        uow.commit()
        return user.token_version


def list_users(uow: UnitOfWork, *, role: str | None = None, include_disabled: bool = True) -> list[dict]:
    q = select(User).order_by(User.username)
    if role:
        q = q.where(User.role == role)
    if not include_disabled:
        q = q.where(User.active.is_(True))
    return [user_view(u) for u in uow.session.scalars(q)]


def seed_demo_users(uow_factory, clock: Clock | None = None) -> list[dict]:
    """Create the demo users (one per role, two officers of different regions, two applicants)
    with the demo password; users that already exist are left untouched. Returns each demo
    user with its password, for the demo's README."""
    clock = clock or SystemClock()
    out = []
    for spec in DEMO_USERS:
        with uow_factory() as uow:
            exists = get_user(uow, spec["username"]) is not None
            if not exists:
                create_user(uow=uow, clock=clock, password=DEMO_PASSWORD, **spec)
        out.append({"username": spec["username"], "password": DEMO_PASSWORD, "role": spec["role"],
                    "display_name": spec["display_name"], "regions": spec.get("regions", []),
                    "siren": spec.get("siren"), "consultant": spec.get("consultant"), "created": not exists})
    return out
