"""The harness of the browser tests (Debian's Chromium driven by Playwright against the app
served by uvicorn on a loopback port), in one place: the Chromium they launch, the database a
live server runs on, the server itself, a signed-in tab that records every server error, and the
sign-in. The session's one Chromium is the `browser` fixture of tests/conftest.py."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select
from web_support import PASSWORD, browser_database, use_fast_passwords

from db import models as m
from db.engine import create_schema, make_engine
from services.uow import unit_of_work_factory
from web.devserver import ServerThread

CHROMIUM = "/usr/bin/chromium"
# --no-sandbox: the tests run as root in a container, where Chromium's sandbox cannot start.
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
SERVER_ERROR_TEXT = ("Erreur du serveur", "Internal Server Error")


@contextmanager
def chromium() -> Iterator:
    """Debian's Chromium, headless, launched by Playwright (fails the test when it is missing)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()
        pw.stop()


@dataclass
class Served:
    """A live server's database: its unit-of-work factory, its temporary folder, and the patch
    (fast passwords, settings) undone when the server stops."""
    uow_factory: object
    tmp: Path
    patch: pytest.MonkeyPatch


@contextmanager
def served_database(tmp_path_factory, name: str) -> Iterator[Served]:
    """An empty database with its schema for a live server (`web_support.browser_database`: a
    SQLite file, or a PostgreSQL database of its own), fast password hashing, documents stored
    under the temporary folder; all undone on exit."""
    patch = pytest.MonkeyPatch()
    use_fast_passwords(patch)
    tmp = tmp_path_factory.mktemp(name)
    url, cleanup = browser_database(tmp, name)
    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()
    factory = unit_of_work_factory(url, storage_dir=str(tmp / "documents"))
    try:
        yield Served(factory, tmp, patch)
    finally:
        factory.engine.dispose()
        cleanup()
        patch.undo()


@contextmanager
def live_server(app, *, port: int | None = None) -> Iterator[ServerThread]:
    """`app` served by uvicorn on a loopback port (a free one unless `port` is given)."""
    with ServerThread(app, port=port) as server:
        yield server


@dataclass
class Live:
    url: str
    uow_factory: object
    ids: dict = field(default_factory=dict)

    def scalar(self, query):
        with self.uow_factory() as uow:  # type: ignore[operator]
            return uow.session.scalar(query)

    def state(self, dossier_id: int) -> str:
        return self.scalar(select(m.Dossier.status).where(m.Dossier.id == dossier_id))

    def reference(self, dossier_id: int) -> str:
        return self.scalar(select(m.Dossier.reference).where(m.Dossier.id == dossier_id))


def sign_in(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Sign in through the workspace's own form, as a person does (no cookie forged)."""
    page.goto(base_url + "/ui/login")
    page.get_by_label("Identifiant", exact=True).fill(username)
    page.get_by_label("Mot de passe", exact=True).fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Se connecter").click()
    assert "/ui/login" not in page.url, f"{username} not signed in: still on {page.url}"


class Tab:
    """One signed-in person in their own browser context; records every server error seen."""

    def __init__(self, browser, live: Live, test_name: str, who: str, viewport=(1366, 900)):
        self.live = live
        self.name = f"{test_name}-{who}"
        self.context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris",
                                           viewport={"width": viewport[0], "height": viewport[1]})
        self.context.set_default_timeout(15000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.shots = 0
        self.page.on("response", lambda r: self.errors.append(f"{r.status} {r.request.method} {r.url}")
                     if r.status >= 500 else None)

    def check(self) -> None:
        body = self.page.inner_text("body")
        for marker in SERVER_ERROR_TEXT:
            if marker in body:
                self.errors.append(f"page shows « {marker} » at {self.page.url}")
        assert not self.errors, self.errors

    def goto(self, path: str) -> None:
        self.page.goto(self.live.url + path)
        self.check()

    def submit(self, locator) -> None:
        """Click a button that posts a form and wait for the page it leads to."""
        with self.page.expect_navigation():
            locator.click()
        self.check()

    def shot(self, label: str, *, full_page: bool = True) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = SHOTS / f"{self.name}-{self.shots:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def login(self, username: str, password: str = PASSWORD) -> None:
        sign_in(self.page, self.live.url, username, password)
        self.check()

    def flash(self) -> str:
        return self.page.inner_text("#flashes")

    def state(self) -> str:
        return self.page.inner_text("#dossier-state")

    def close(self) -> None:
        self.context.close()
