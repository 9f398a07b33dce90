"""Signed, expiring access tokens (JWT, HS256) and the secret that signs them.

The secret comes from `USINE_SECRET_KEY`, else from `<var_dir>/secret_key`, generated on first
use (64 random bytes, hex, file mode 0600, created atomically so that several API workers
starting together agree on one secret). Tokens carry the username (`sub`), the role (for
information only: each request reloads the user, so a disabled user or a changed role takes
effect at once), the account's version (`ver`: each request compares it with the account's, so
a password change, a disable or a « déconnexion partout » ends every earlier token — the cache
below remembers signatures, never that an account accepts a token), `iat`, `exp`, `iss` and a
random `jti`.

Expiry is judged against real time, not the service clock: a demo workspace living in 2022
still needs tokens that expire an hour after they were issued in real life."""
from __future__ import annotations

import secrets
import time

import jwt

from services.secrets import MIN_SECRET_LENGTH, load_or_create_secret, resolve_secret  # noqa: F401

ALGORITHM = "HS256"
ISSUER = "usine"
DEFAULT_TTL_SECONDS = 3600


def issue_token(secret: str, *, username: str, role: str, version: int = 0, ttl_seconds: int = DEFAULT_TTL_SECONDS,
                now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {"sub": username, "role": role, "ver": version, "iat": issued, "exp": issued + ttl_seconds,
              "iss": ISSUER, "jti": secrets.token_hex(8)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class InvalidToken(Exception):
    pass


# Tokens already verified by this process, with their claims: a client sends the same token
# with every request, and checking its signature again costs more than the rest of the
# authentication. Only the expiry can change once a token has been verified, so a hit is
# judged on `exp` alone, against real time as PyJWT does. Bounded: emptied when full.
_VERIFIED: dict[tuple[str, str], dict] = {}
_VERIFIED_MAX = 4096


def read_token(secret: str, token: str) -> dict:
    """The claims of a valid token; `InvalidToken` (with a French reason) otherwise."""
    if not token or len(token) > 4096:
        raise InvalidToken("jeton absent ou trop long")
    known = _VERIFIED.get((secret, token))
    if known is not None:
        if time.time() < known["exp"]:
            return known
        _VERIFIED.pop((secret, token), None)
        raise InvalidToken("jeton expiré : reconnectez-vous")
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["sub", "exp", "iat", "iss"]})
    except jwt.ExpiredSignatureError:
        raise InvalidToken("jeton expiré : reconnectez-vous") from None
    except jwt.InvalidTokenError:
        raise InvalidToken("jeton invalide") from None
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("exp"), (int, float)) \
            or type(claims.get("ver")) is not int:
        raise InvalidToken("jeton invalide")
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[(secret, token)] = claims
    return claims
