"""A real, certified OpenID provider for the tests: panva's `oidc-provider` (npm, pinned by
tests/oidc/package-lock.json, installed by `npm ci` into tests/oidc/node_modules the first time a
test needs it), run by node from tests/oidc/provider.mjs on a loopback port, configured like
ProConnect (PKCE required, acr values eidas1..3, userinfo as a signed JWT, RP-initiated logout).

`walk_sign_in` plays a browser's redirects with httpx, so that a test can tamper with one step
(the nonce sent, the state returned) and see what the workspace answers."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx

HERE = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "usine-test"
CLIENT_SECRET = "secret-du-client-usine-de-test-" + "7" * 32


@dataclass(frozen=True)
class Account:
    sub: str
    email: str
    password: str
    given_name: str
    usual_name: str
    acr: str = "eidas1"


ACCOUNTS = {
    "claire": Account("fi-0001", "claire.martin@occitanie.example.fr", "mot-de-passe-claire", "Claire", "Martin"),
    "hugo": Account("fi-0002", "Hugo.Bernard@nouvelle-aquitaine.example.fr", "mot-de-passe-hugo", "Hugo", "Bernard"),
    "inconnu": Account("fi-0003", "inconnu@ailleurs.example.fr", "mot-de-passe-inconnu", "Jean", "Inconnu"),
    "ancien": Account("fi-0004", "ancien.agent@occitanie.example.fr", "mot-de-passe-ancien", "Paul", "Ancien"),
}


def ensure_installed() -> None:
    """`npm ci` from the committed lock when node_modules is missing (one worker at a time)."""
    if (HERE / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm est introuvable : installez node (20 ou plus) et npm pour les tests OpenID Connect.")
    with open(HERE / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (HERE / "node_modules" / "oidc-provider" / "package.json").exists():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True,
                           timeout=300)


class Provider:
    """The node process; `issuer` once it listens. Stop it with `stop()` (SIGTERM, then kill)."""

    def __init__(self, *, redirect_uris: list[str], post_logout_redirect_uris: list[str], port: int = 0):
        ensure_installed()
        clients = [{
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_uris": redirect_uris, "post_logout_redirect_uris": post_logout_redirect_uris,
            "token_endpoint_auth_method": "client_secret_post", "userinfo_signed_response_alg": "RS256",
            "grant_types": ["authorization_code"], "response_types": ["code"],
        }]
        env = {**os.environ, "OIDC_PORT": str(port), "OIDC_CLIENTS": json.dumps(clients),
               "OIDC_ACCOUNTS": json.dumps([a.__dict__ for a in ACCOUNTS.values()]), "NODE_ENV": "test"}
        self.process = subprocess.Popen(["node", str(HERE / "provider.mjs")], cwd=HERE, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=30)
        if not line or not line[0].strip():
            self.stop()
            raise RuntimeError(f"the OpenID provider did not start: {self.process.stderr.read()[-2000:]}")
        self.issuer = json.loads(line[0])["issuer"]
        # Keep draining stderr (its warnings) so that the process never blocks on a full pipe.
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def oidc_env(monkeypatch, issuer: str, **overrides) -> None:
    """The USINE_OIDC_* variables of a workspace that uses this provider."""
    values = {"ISSUER": issuer, "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, "ACR_VALUES": "eidas1",
              "LABEL": "ProConnect", **{k.upper(): v for k, v in overrides.items()}}
    for key, value in values.items():
        if value is None:
            monkeypatch.delenv(f"USINE_OIDC_{key}", raising=False)
        else:
            monkeypatch.setenv(f"USINE_OIDC_{key}", value)


def with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@dataclass
class Walk:
    authorization_url: str  # where the workspace sent the browser (after any tampering)
    callback_url: str  # where the provider sent it back (after any tampering)
    response: httpx.Response  # the workspace's answer to the callback


def walk_sign_in(client: httpx.Client, app_url: str, account: Account, *, tamper_authorization=None,
                 tamper_callback=None, max_steps: int = 12) -> Walk:
    """Click « Se connecter avec ProConnect », sign in at the provider, come back: each redirect
    followed by hand (at most `max_steps`), the login form posted as a person would."""
    start = client.get(app_url + "/ui/oidc/connexion")
    assert start.status_code in (302, 303), start.text
    url = start.headers["location"]
    if tamper_authorization:
        url = tamper_authorization(url)
    authorization_url = url
    response = client.get(url)
    for _ in range(max_steps):
        if response.status_code in (302, 303):
            url = str(response.url.join(response.headers["location"]))
            if url.startswith(app_url):
                break
            response = client.get(url)
        elif response.status_code == 200 and "/interaction/" in str(response.url):
            response = client.post(str(response.url).rstrip("/") + "/login",
                                   data={"email": account.email, "password": account.password})
        else:
            raise AssertionError(f"unexpected answer of the provider: {response.status_code} {response.text[:500]}")
    else:
        raise AssertionError("the provider never sent the browser back")
    if tamper_callback:
        url = tamper_callback(url)
    return Walk(authorization_url, url, client.get(url))
