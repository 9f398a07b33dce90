"""OpenID Connect sign-in of agents (officers, heads of service, finance, auditors, administrators)
through ProConnect or a region's own provider: the configuration, the e-mail addresses an
administrator registered, and who a provider's identity opens the workspace to.

The protocol itself (discovery, authorization code + PKCE S256, state, nonce, the ID token's
signature and claims, RP-initiated logout) is Authlib's, driven by `web/routes_oidc.py`; this
module decides from the verified claims:

- an e-mail address nobody registered is refused — there is no default role;
- an address linked to an account (created by an administrator, with its role and regions)
  opens that account, unless it is disabled;
- an address pre-registered with a role and regions (and no account yet) provisions the account
  at the first sign-in, with exactly that role and those regions;
- the provider's identity (issuer, `sub`) is bound at the first sign-in: later, the same address
  under another identity is refused (an address reassigned at the provider opens nothing).

Provisioned accounts have no local password (their hash is not an argon2 hash: the password form
never accepts them). Companies, consultants and installations without a provider keep the local
passwords of `services.users`."""
from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from db.models_auth import User
from db.models_oidc import OidcIdentity
from rules.errors import InvalidInput, NotFound, RuleViolation
from services.clock import Clock
from services.uow import UnitOfWork
from services.users import USERNAME_PATTERN, checked_regions, get_user

# The roles an OpenID provider may open: the agents' (the auditor too, who reads only: not
# services.messages.REGION_WRITER_ROLES). Companies and consultants keep passwords.
AGENT_ROLES = ("officer", "head", "finance", "auditor", "admin")
# Not an argon2 hash: `services.users.authenticate` never accepts a password for these accounts.
NO_LOCAL_PASSWORD = "!oidc-only: no local password"
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
# ProConnect's scopes are named after their claims; a generic provider: "openid email profile".
DEFAULT_SCOPES = "openid email given_name usual_name"


class OidcSettings(BaseSettings):
    """`USINE_OIDC_*`: unset issuer = no provider (the sign-in page shows the password form only)."""

    model_config = SettingsConfigDict(env_prefix="USINE_OIDC_", extra="ignore")

    issuer: str | None = None
    # Defaults to <issuer>/.well-known/openid-configuration.
    discovery_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scopes: str = DEFAULT_SCOPES
    # Space-separated, e.g. "eidas1": sent as acr_values, and the ID token's acr must be one of them.
    acr_values: str | None = None
    label: str = "ProConnect"
    # The public addresses registered at the provider, when the service sits behind a proxy
    # (defaults: derived from the request, /ui/oidc/retour and /ui/oidc/deconnecte).
    redirect_uri: str | None = None
    post_logout_redirect_uri: str | None = None
    # How the client authenticates at the token endpoint (ProConnect: client_secret_post).
    token_endpoint_auth_method: str = "client_secret_post"
    timeout_seconds: float = 10.0


class OidcConfigError(ValueError):
    pass


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    discovery_url: str
    scopes: str = DEFAULT_SCOPES
    acr_values: tuple[str, ...] = ()
    label: str = "ProConnect"
    redirect_uri: str | None = None
    post_logout_redirect_uri: str | None = None
    token_endpoint_auth_method: str = "client_secret_post"
    timeout_seconds: float = 10.0

    @classmethod
    def from_settings(cls, settings: OidcSettings | None = None) -> "OidcConfig | None":
        """The configuration of the environment, or None when no issuer is configured; a
        configuration with an issuer but no client is an error (French, naming the variable)."""
        s = settings or OidcSettings()
        if not s.issuer:
            return None
        issuer = s.issuer.rstrip("/")
        for name in ("client_id", "client_secret"):
            if not getattr(s, name):
                raise OidcConfigError(f"USINE_OIDC_{name.upper()} : obligatoire quand USINE_OIDC_ISSUER est défini.")
        if "openid" not in s.scopes.split():
            raise OidcConfigError("USINE_OIDC_SCOPES : doit contenir « openid ».")
        if s.token_endpoint_auth_method not in ("client_secret_post", "client_secret_basic"):
            raise OidcConfigError("USINE_OIDC_TOKEN_ENDPOINT_AUTH_METHOD : client_secret_post ou client_secret_basic.")
        return cls(issuer=issuer, client_id=s.client_id, client_secret=s.client_secret,
                   discovery_url=s.discovery_url or issuer + "/.well-known/openid-configuration",
                   scopes=s.scopes, acr_values=tuple((s.acr_values or "").split()), label=s.label,
                   redirect_uri=s.redirect_uri, post_logout_redirect_uri=s.post_logout_redirect_uri,
                   token_endpoint_auth_method=s.token_endpoint_auth_method, timeout_seconds=s.timeout_seconds)


class OidcRefused(Exception):
    """A sign-in refused: `rule` for the logs and tests, `message` (French) for the person."""

    def __init__(self, rule: str, message: str, status: int = 403):
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.status = status


@dataclass(frozen=True)
class SignedIn:
    username: str
    role: str
    display_name: str
    provisioned: bool


def normalize_email(raw) -> str:
    email = raw.strip().lower() if isinstance(raw, str) else ""
    if len(email) > 320 or not EMAIL_PATTERN.match(email):
        raise InvalidInput("email", f"email : adresse électronique invalide « {raw} ».")
    return email


def identity_view(identity: OidcIdentity) -> dict:
    return {"email": identity.email, "username": identity.username, "role": identity.role,
            "regions": list(identity.regions or []), "display_name": identity.display_name,
            "bound": identity.subject is not None,
            "created_at": identity.created_at.isoformat(),
            "last_sign_in_at": identity.last_sign_in_at.isoformat() if identity.last_sign_in_at else None}


def register_identity(*, uow: UnitOfWork, clock: Clock, email: str, username: str | None = None,
                      role: str | None = None, regions=None, display_name: str | None = None) -> dict:
    """Register an agent's e-mail address for the provider's sign-in: linked to the existing
    account `username` (its role and regions are the account's), or pre-registered with `role` and
    `regions` (the account is created at the first sign-in). One or the other, never neither."""
    email = normalize_email(email)
    if username is not None and (role is not None or regions or display_name is not None):
        raise InvalidInput("role", "role : un compte existant garde son rôle, ses régions et son nom ; "
                           "donnez soit le compte, soit le rôle et les régions.")
    if username is not None:
        user = get_user(uow, username)
        if user is None:
            raise NotFound("utilisateur", username)
        if user.role not in AGENT_ROLES:
            raise RuleViolation("oidc_agents_only", f"Le compte « {username} » a le rôle « {user.role} » : la connexion "
                                f"par fournisseur d'identité est réservée aux agents ({', '.join(AGENT_ROLES)}).",
                                field="username")
        if uow.session.scalar(select(OidcIdentity.id).where(OidcIdentity.username == username)) is not None:
            raise RuleViolation("oidc_account_linked", f"Le compte « {username} » est déjà rattaché à une adresse.",
                                field="username")
        identity = OidcIdentity(email=email, username=username, role=None, regions=[], display_name=None)
    else:
        if role is None:
            raise InvalidInput("role", "role : obligatoire pour une adresse sans compte (aucun rôle par défaut).")
        if role not in AGENT_ROLES:
            raise InvalidInput("role", f"role : « {role} » n'est pas l'un de {', '.join(AGENT_ROLES)}.")
        regions = checked_regions(uow, role, regions)
        if display_name is not None:
            display_name = display_name.strip()
            if not display_name or len(display_name) > 200:
                raise InvalidInput("display_name", "display_name : 1 à 200 caractères.")
        identity = OidcIdentity(email=email, username=None, role=role, regions=regions, display_name=display_name)
    if uow.session.scalar(select(OidcIdentity.id).where(OidcIdentity.email == email)) is not None:
        raise RuleViolation("oidc_email_taken", f"L'adresse « {email} » est déjà enregistrée.", field="email")
    identity.created_at = clock.now()
    uow.session.add(identity)
    try:
        uow.commit()
    except IntegrityError:
        uow.rollback()
        raise RuleViolation("oidc_email_taken", f"L'adresse « {email} » est déjà enregistrée.", field="email") from None
    return identity_view(identity)


def list_identities(uow: UnitOfWork) -> list[dict]:
    return [identity_view(i) for i in uow.session.scalars(select(OidcIdentity).order_by(OidcIdentity.email))]


def remove_identity(*, uow: UnitOfWork, email: str) -> None:
    """Forget an address (its account, if any, stays: disable it to close it)."""
    email = normalize_email(email)
    identity = uow.session.scalar(select(OidcIdentity).where(OidcIdentity.email == email))
    if identity is None:
        raise NotFound("adresse", email)
    uow.session.delete(identity)
    uow.commit()


def check_acr(config: OidcConfig, claims: dict) -> None:
    """The authentication level: when the configuration asks for acr values, the ID token's acr
    must be one of them."""
    if not config.acr_values:
        return
    acr = claims.get("acr")
    if acr not in config.acr_values:
        got = f"« {acr} »" if isinstance(acr, str) else "aucun niveau"
        raise OidcRefused("oidc_acr", f"Niveau d'authentification insuffisant : {got} reçu du fournisseur, "
                          f"{' ou '.join('« ' + a + ' »' for a in config.acr_values)} exigé. Connexion refusée.")


def _display_name(claims: dict, email: str) -> str:
    given = claims.get("given_name") if isinstance(claims.get("given_name"), str) else ""
    family = next((claims[k] for k in ("usual_name", "family_name") if isinstance(claims.get(k), str)), "")
    name = " ".join(p for p in (given.strip(), family.strip()) if p) or (claims.get("name") or "").strip()
    return (name or email)[:200]


def _new_username(uow: UnitOfWork, email: str) -> str:
    base = re.sub(r"[^a-z0-9._-]+", "-", email.split("@", 1)[0].lower()).strip("-._")[:70] or "agent"
    if len(base) < 2:
        base = f"agent-{base}"
    candidate, n = base, 1
    while uow.session.scalar(select(User.id).where(User.username == candidate)) is not None:
        n += 1
        candidate = f"{base}-{n}"
    assert USERNAME_PATTERN.match(candidate)
    return candidate


def sign_in(*, uow: UnitOfWork, clock: Clock, issuer: str, claims: dict) -> SignedIn:
    """Who the verified claims (ID token, and the userinfo's) open the workspace to, or
    `OidcRefused`. Binds the provider's identity at the first sign-in, provisions a pre-registered
    account, and records the sign-in; all of it in one commit."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise OidcRefused("oidc_no_subject", "Le fournisseur d'identité n'a pas transmis d'identifiant (sub).", 400)
    raw_email = claims.get("email")
    if not isinstance(raw_email, str) or not raw_email.strip():
        raise OidcRefused("oidc_no_email", "Le fournisseur d'identité n'a pas transmis d'adresse électronique : "
                          "la connexion demande la portée « email ».")
    if claims.get("email_verified") is False:
        raise OidcRefused("oidc_email_unverified", f"L'adresse « {raw_email} » n'est pas vérifiée par le fournisseur "
                          "d'identité : connexion refusée.")
    try:
        email = normalize_email(raw_email)
    except InvalidInput:
        raise OidcRefused("oidc_no_email", f"Adresse électronique invalide reçue du fournisseur : « {raw_email} ».") from None
    identity = uow.session.scalar(select(OidcIdentity).where(OidcIdentity.issuer == issuer,
                                                             OidcIdentity.subject == subject))
    if identity is None:
        identity = uow.session.scalar(select(OidcIdentity).where(OidcIdentity.email == email))
        if identity is None:
            raise OidcRefused("oidc_unknown_email", f"Aucun compte d'agent n'est ouvert pour l'adresse « {email} ». "
                              "Demandez à un administrateur d'Usine de l'enregistrer avec votre rôle et votre région, "
                              "puis reconnectez-vous.")
        if identity.subject is not None and (identity.issuer, identity.subject) != (issuer, subject):
            raise OidcRefused("oidc_identity_mismatch", f"L'adresse « {email} » est rattachée à une autre identité du "
                              "fournisseur : connexion refusée. Un administrateur peut réenregistrer l'adresse.")
    provisioned = False
    now = clock.now()
    if identity.username is None:
        if identity.role not in AGENT_ROLES:  # never a default role
            raise OidcRefused("oidc_unknown_email", f"Aucun rôle n'est enregistré pour l'adresse « {email} » : "
                              "demandez à un administrateur d'Usine de l'enregistrer.")
        user = User(username=_new_username(uow, email), display_name=identity.display_name or _display_name(claims, email),
                    password_hash=NO_LOCAL_PASSWORD, role=identity.role, regions=list(identity.regions or []),
                    siren=None, consultant=None, active=True, created_at=now)
        uow.session.add(user)
        uow.session.flush()
        identity.username = user.username
        provisioned = True
    else:
        user = get_user(uow, identity.username)
        if user is None:
            raise OidcRefused("oidc_unknown_email", f"Le compte rattaché à l'adresse « {email} » n'existe plus : "
                              "demandez à un administrateur d'Usine de l'enregistrer à nouveau.")
    if not user.active:
        raise OidcRefused("oidc_account_disabled", f"Le compte rattaché à l'adresse « {email} » est désactivé : "
                          "connexion refusée. Adressez-vous à un administrateur d'Usine.")
    if user.role not in AGENT_ROLES:
        raise OidcRefused("oidc_agents_only", "La connexion par fournisseur d'identité est réservée aux agents ; "
                          "les entreprises et les prestataires se connectent avec leur mot de passe.")
    if identity.subject is None:
        identity.issuer, identity.subject, identity.first_sign_in_at = issuer, subject, now
    identity.last_sign_in_at = now
    try:
        uow.commit()
    except IntegrityError:  # two first sign-ins at once: the other one won
        uow.rollback()
        raise OidcRefused("oidc_retry", "Connexion simultanée détectée : reconnectez-vous.", 409) from None
    return SignedIn(user.username, user.role, user.display_name, provisioned)
