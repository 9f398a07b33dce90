"""Sign-in of agents through an OpenID provider (ProConnect or a region's own), with Authlib's
Starlette client: discovery (.well-known/openid-configuration), authorization code + PKCE (S256),
`state` and `nonce` kept in the session and checked on the way back, the ID token's signature,
issuer, audience and nonce verified, `acr_values` requested and the returned `acr` checked when
configured, the userinfo read (JSON, or a signed JWT as ProConnect answers), RP-initiated logout.

Who the verified claims open the workspace to is `services.oidc.sign_in`'s decision. Routes:

- GET  /ui/oidc/connexion   → the provider's authorization endpoint
- GET  /ui/oidc/retour      ← the provider's answer (the redirect_uri registered at the provider)
- GET  /ui/oidc/deconnecte  ← back from the provider's end_session_endpoint (post_logout_redirect_uri)

`/ui/logout` ends the provider's session too when the session was opened here (`logout_redirect`)."""
from __future__ import annotations

import logging
from types import SimpleNamespace
from urllib.parse import urlsplit

import httpx
from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from starlette.concurrency import run_in_threadpool

from services.oidc import OidcConfig, OidcRefused, check_acr, sign_in
from web.auth import flash

log = logging.getLogger("usine.web.oidc")
router = APIRouter()

PREFIX = "/ui"
# What the session keeps of an OpenID sign-in: the ID token (the id_token_hint of the logout)
# and, during the redirect, where to go afterwards. Authlib keeps state, nonce and the PKCE
# verifier under its own `_state_oidc_<state>` keys.
ID_TOKEN_KEY = "oidc_id_token"
NEXT_KEY = "oidc_next"


def configure_oidc(web_app, config: OidcConfig | None = None) -> None:
    """Give the workspace its provider (from `USINE_OIDC_*` unless a configuration is passed):
    `web_app.state.web.oidc` (None without a provider), the label of the sign-in button for the
    templates, and the provider's origin in the pages' CSP form-action (the logout button posts,
    and the answer leads to the provider's end_session_endpoint)."""
    config = config if config is not None else OidcConfig.from_settings()
    web = web_app.state.web
    web.templates.env.globals["oidc_label"] = config.label if config else None
    if config is None:
        web.oidc = None
        return
    oauth = OAuth()
    client = oauth.register(
        name="oidc", client_id=config.client_id, client_secret=config.client_secret,
        server_metadata_url=config.discovery_url,
        client_kwargs={"scope": config.scopes, "code_challenge_method": "S256",
                       "token_endpoint_auth_method": config.token_endpoint_auth_method,
                       "timeout": config.timeout_seconds})
    web.oidc = SimpleNamespace(config=config, client=client)
    origins = {_origin(config.issuer)}

    @web_app.middleware("http")
    async def _provider_in_form_action(request: Request, call_next):
        response = await call_next(request)
        csp = response.headers.get("content-security-policy")
        if csp and "form-action 'self'" in csp:
            metadata = client.server_metadata
            extra = origins | ({_origin(metadata["end_session_endpoint"])} if metadata.get("end_session_endpoint") else set())
            response.headers["content-security-policy"] = csp.replace(
                "form-action 'self'", "form-action 'self' " + " ".join(sorted(extra)))
        return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _here(request: Request, path: str) -> str:
    """An absolute address of the workspace (its mount point included: /ui)."""
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}{path}"


def _provider(request: Request):
    oidc = getattr(request.app.state.web, "oidc", None)
    if oidc is None:
        from starlette.exceptions import HTTPException

        raise HTTPException(404, "Aucun fournisseur d'identité n'est configuré : connectez-vous avec votre mot de passe.")
    return oidc


def _refused(request: Request, status: int, message: str, label: str):
    from web.app import render

    return render(request, "oidc_refused.html", status=status, title="Connexion refusée", message=message,
                  provider=label)


def _safe_next(raw) -> str | None:
    from web.routes_auth import _safe_next as same_rule

    return same_rule(raw)


@router.get("/oidc/connexion", name="oidc_login")
async def oidc_login(request: Request, next: str | None = None):
    oidc = _provider(request)
    config = oidc.config
    redirect_uri = config.redirect_uri or _here(request, "/oidc/retour")
    target = _safe_next(next)
    if target:
        request.session[NEXT_KEY] = target
    else:
        request.session.pop(NEXT_KEY, None)
    extra = {"acr_values": " ".join(config.acr_values)} if config.acr_values else {}
    try:
        return await oidc.client.authorize_redirect(request, redirect_uri, **extra)
    except (httpx.HTTPError, ValueError, KeyError, RuntimeError) as exc:
        log.warning("OpenID provider unavailable at sign-in: %r", exc)
        return _refused(request, 503, f"{config.label} ne répond pas (configuration du fournisseur illisible ou "
                        "injoignable). Réessayez dans quelques minutes, ou connectez-vous avec votre mot de passe "
                        "si vous en avez un.", config.label)


async def _userinfo(client, token: dict, id_claims: dict) -> dict:
    """The userinfo endpoint's claims (JSON, or a signed JWT verified with the provider's keys),
    which must describe the same `sub` as the ID token. Empty without a userinfo endpoint."""
    metadata = await client.load_server_metadata()
    endpoint = metadata.get("userinfo_endpoint")
    if not endpoint:
        return {}
    response = await client.get(endpoint, token=token)
    response.raise_for_status()
    if response.headers.get("content-type", "").split(";")[0].strip() == "application/jwt":
        alg_values = metadata.get("userinfo_signing_alg_values_supported") or ["RS256"]
        keys = KeySet.import_key_set(await client.fetch_jwk_set())
        decoded = jose_jwt.decode(response.text.strip(), key=keys,
                                  registry=JWSRegistry(algorithms=alg_values, strict_check_header=False))
        claims = dict(decoded.claims)
        if "iss" in claims and claims["iss"] != metadata.get("issuer"):
            raise OidcRefused("oidc_userinfo", "Réponse userinfo d'un autre émetteur : connexion refusée.", 400)
        aud = claims.get("aud")
        if aud is not None and client.client_id not in (aud if isinstance(aud, list) else [aud]):
            raise OidcRefused("oidc_userinfo", "Réponse userinfo destinée à un autre service : connexion refusée.", 400)
    else:
        claims = response.json()
    if claims.get("sub") != id_claims.get("sub"):
        raise OidcRefused("oidc_userinfo", "La réponse userinfo ne décrit pas la personne du jeton d'identité : "
                          "connexion refusée.", 400)
    return claims


@router.get("/oidc/retour", name="oidc_callback")
async def oidc_callback(request: Request):
    oidc = _provider(request)
    config, client = oidc.config, oidc.client
    label = config.label
    web = request.app.state.web
    try:
        metadata = await client.load_server_metadata()
        # RFC 9207: the authorization response names its issuer (mix-up defence).
        returned_iss = request.query_params.get("iss")
        if returned_iss is not None and returned_iss != metadata.get("issuer"):
            raise OidcRefused("oidc_issuer", "La réponse vient d'un autre fournisseur d'identité que celui configuré : "
                              "connexion refusée.", 400)
        claims_options = {"iss": {"essential": True, "value": metadata.get("issuer", config.issuer)},
                          "aud": {"essential": True, "value": config.client_id}}
        token = await client.authorize_access_token(request, claims_options=claims_options)
        id_claims = dict(token.get("userinfo") or {})
        if not id_claims:
            raise OidcRefused("oidc_no_id_token", f"{label} n'a pas renvoyé de jeton d'identité : connexion refusée.", 400)
        check_acr(config, id_claims)
        claims = {**await _userinfo(client, token, id_claims), **{k: id_claims[k] for k in ("sub", "acr") if k in id_claims}}
    except OidcRefused as refused:
        log.info("OpenID sign-in refused: %s", refused.rule)
        return _refused(request, refused.status, refused.message, label)
    except OAuthError as exc:
        log.info("OpenID sign-in refused by the protocol: %s %s", exc.error, exc.description)
        if exc.error == "mismatching_state":
            message = ("La réponse du fournisseur ne correspond à aucune connexion en cours (paramètre « state » "
                       "inconnu ou expiré) : recommencez depuis la page de connexion.")
        else:
            message = f"{label} a refusé la connexion ({exc.error}{' : ' + exc.description if exc.description else ''})."
        return _refused(request, 400, message, label)
    except JoseError as exc:
        log.info("OpenID ID token refused: %r", exc)
        claim = getattr(exc, "claim", None) or type(exc).__name__
        return _refused(request, 400, f"Le jeton d'identité renvoyé par {label} est invalide ({claim}) : "
                        "connexion refusée. Recommencez depuis la page de connexion.", label)
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("OpenID provider failed during sign-in: %r", exc)
        return _refused(request, 502, f"{label} n'a pas répondu correctement pendant la connexion : réessayez.", label)

    def decide():
        with web.uow_factory() as uow:
            return sign_in(uow=uow, clock=web.clock, issuer=metadata.get("issuer", config.issuer), claims=claims)

    try:
        signed = await run_in_threadpool(decide)
    except OidcRefused as refused:
        log.info("OpenID sign-in refused: %s", refused.rule)
        return _refused(request, refused.status, refused.message, label)
    target = _safe_next(request.session.get(NEXT_KEY))
    # A new session, as after a password sign-in: nothing of the anonymous one is kept; the
    # session is kept by the server (services.sessions), at the account's current version.
    from web.routes_auth import open_session

    await run_in_threadpool(open_session, request, signed.username)
    request.session[ID_TOKEN_KEY] = token["id_token"]
    flash(request, "success", f"Bienvenue, {signed.display_name}." if not signed.provisioned else
          f"Bienvenue, {signed.display_name} : votre compte vient d'être ouvert.")
    from web.app import home_for

    return RedirectResponse(target or home_for(signed.role), status_code=303)


async def logout_redirect(request: Request):
    """After `/ui/logout` cleared the session of an OpenID sign-in: the provider's
    end_session_endpoint with id_token_hint, post_logout_redirect_uri and a state. None when the
    session was not opened by the provider (or no provider is configured any more)."""
    id_token = request.session.get(ID_TOKEN_KEY)
    oidc = getattr(request.app.state.web, "oidc", None)
    request.session.clear()
    if not id_token or oidc is None:
        return None
    back = oidc.config.post_logout_redirect_uri or _here(request, "/oidc/deconnecte")
    try:
        return await oidc.client.logout_redirect(request, post_logout_redirect_uri=back, id_token_hint=id_token)
    except (httpx.HTTPError, RuntimeError, ValueError) as exc:
        log.warning("OpenID provider logout unavailable: %r", exc)
        flash(request, "error", f"Vous êtes déconnecté(e) d'Usine, mais {oidc.config.label} n'a pas pu être joint : "
                                "fermez votre navigateur pour clore la session du fournisseur.")
        return RedirectResponse(PREFIX + "/login", status_code=303)


@router.get("/oidc/deconnecte", name="oidc_logged_out")
async def oidc_logged_out(request: Request):
    oidc = _provider(request)
    try:
        await oidc.client.validate_logout_response(request)
        flash(request, "success", f"Vous êtes déconnecté(e) d'Usine et de {oidc.config.label}.")
    except OAuthError:
        flash(request, "success", "Vous êtes déconnecté(e).")
    return RedirectResponse(PREFIX + "/login", status_code=303)
