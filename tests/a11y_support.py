"""Accessibility checks for the browser tests: axe-core (the npm package, pinned in
tests/a11y/package-lock.json and installed by `make a11y-packages`, i.e. `npm ci` in tests/a11y)
injected into a Playwright page and run there, and the keyboard focus checked visible.

Any page test can call it:

    from a11y_support import assert_accessible, assert_focus_visible

    assert_accessible(page, label="formulaire de candidature")          # the whole page
    assert_accessible(page, context="#candidature", label="le formulaire")  # one region only
    page.keyboard.press("Tab"); assert_focus_visible(page)

`assert_accessible` fails on every violation of impact « serious » or « critical » of the WCAG 2.x
A/AA rules and axe's best practices, naming each rule, its help page and the CSS selectors of the
elements at fault; it returns all the violations found (minor and moderate too) for a test that
wants to look closer. The pages' Content-Security-Policy forbids inline scripts: axe's source is
evaluated through Playwright's `evaluate` (the DevTools protocol, which the policy does not cover),
not added as a <script>; the page itself is not changed otherwise.

Without node/npm, or with tests/a11y/node_modules missing or older than the lock, the check FAILS
(it is never skipped) and says what to run."""
from __future__ import annotations

import json
import shutil
from functools import lru_cache
from pathlib import Path

import pytest

A11Y_DIR = Path(__file__).resolve().parent / "a11y"
AXE_PACKAGE = A11Y_DIR / "node_modules" / "axe-core"
# WCAG 2.0, 2.1 and 2.2 levels A and AA, plus axe's best practices (landmarks, one h1, heading order…).
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice")
FAILING_IMPACTS = ("serious", "critical")
MAX_NODES = 4  # elements named per rule in a failure message


def _locked_version() -> str:
    lock = json.loads((A11Y_DIR / "package-lock.json").read_text(encoding="utf-8"))
    return lock["packages"]["node_modules/axe-core"]["version"]


@lru_cache(maxsize=1)
def axe_source() -> str:
    """axe.min.js as installed from the lock; fails the test (with what to run) when it is not."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    how = ("install Node.js and npm (Debian: apt-get install nodejs npm; `make system-packages` does it), then "
           "run `make a11y-packages` (npm ci --no-audit --no-fund in tests/a11y)")
    script = AXE_PACKAGE / "axe.min.js"
    if not script.exists():
        if missing:
            pytest.fail(f"accessibility check impossible: {' and '.join(missing)} not found and axe-core is not "
                        f"installed in {AXE_PACKAGE} — {how}", pytrace=False)
        pytest.fail(f"accessibility check impossible: axe-core is not installed in {AXE_PACKAGE} — run "
                    "`make a11y-packages` (npm ci --no-audit --no-fund in tests/a11y)", pytrace=False)
    installed = json.loads((AXE_PACKAGE / "package.json").read_text(encoding="utf-8"))["version"]
    if installed != _locked_version():
        pytest.fail(f"axe-core {installed} is installed in {AXE_PACKAGE} but the lock pins {_locked_version()} — "
                    "run `make a11y-packages`", pytrace=False)
    return script.read_text(encoding="utf-8")


def axe_version() -> str:
    """The version of axe-core the checks run with (the lock's)."""
    return _locked_version()


def run_axe(page, *, context: str | None = None, tags: tuple[str, ...] = TAGS,
            disable: tuple[str, ...] = ()) -> dict:
    """axe.run on the page (or on the elements matching the CSS selector `context`): its raw result."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    options = {"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"],
               "rules": {rule: {"enabled": False} for rule in disable}}
    return page.evaluate("([context, options]) => window.axe.run(context ? document.querySelectorAll(context)"
                         " : document, options)", [context, options])


def describe(violations: list[dict]) -> str:
    """One paragraph a violation: rule, impact, help and its page, then each element's selector."""
    lines = []
    for v in violations:
        nodes = v["nodes"]
        lines.append(f"- [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl'].split('?')[0]}), "
                     f"{len(nodes)} element(s)")
        for node in nodes[:MAX_NODES]:
            target = " ".join(" >> ".join(t) if isinstance(t, list) else t for t in node["target"])
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {target}  — {summary[:240]}")
        if len(nodes) > MAX_NODES:
            lines.append(f"    … and {len(nodes) - MAX_NODES} more")
    return "\n".join(lines)


def assert_accessible(page, *, context: str | None = None, label: str | None = None,
                      impacts: tuple[str, ...] = FAILING_IMPACTS, disable: tuple[str, ...] = ()) -> list[dict]:
    """No axe violation of the given impacts on the page (or in `context`); returns every violation.
    `label` names the page in the failure message (default: its URL)."""
    results = run_axe(page, context=context, disable=disable)
    violations = results["violations"]
    failing = [v for v in violations if v.get("impact") in impacts]
    where = label or page.url
    if context:
        where += f" ({context})"
    assert not failing, (f"axe-core {axe_version()} finds {len(failing)} {'/'.join(impacts)} violation(s) on "
                         f"{where} [{page.url}]:\n{describe(failing)}")
    return violations


_FOCUS_STYLE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const r = el.getBoundingClientRect();
  return {tag: el.tagName.toLowerCase(), id: el.id, text: (el.textContent || el.value || '').trim().slice(0, 60),
          outlineStyle: s.outlineStyle, outlineWidth: parseFloat(s.outlineWidth) || 0,
          boxShadow: s.boxShadow, width: r.width, height: r.height,
          focusVisible: el.matches(':focus-visible'), focus: el.matches(':focus'),
          documentFocused: document.hasFocus()};
}"""


def focused(page) -> dict | None:
    """The element that has the keyboard focus, with its focus style (None: nothing focused)."""
    return page.evaluate(_FOCUS_STYLE)


def assert_focus_visible(page, *, allow_unstyled: tuple[str, ...] = ()) -> dict:
    """Something has the focus, it is on screen, and it shows a focus ring (an outline of at
    least 2 px, or a box shadow). `allow_unstyled`: ids of targets that need none (the <main>
    a skip link lands on is a reading position, not a control)."""
    info = focused(page)
    assert info is not None, f"nothing has the keyboard focus on {page.url}"
    if info["id"] in allow_unstyled:
        return info
    assert info["width"] > 0 and info["height"] > 0, f"the focused element is not on screen: {info}"
    ring = (info["outlineStyle"] != "none" and info["outlineWidth"] >= 2) or info["boxShadow"] not in ("none", "")
    assert ring, f"the focused element shows no focus ring on {page.url}: {info}"
    return info


def tab_to(page, predicate: str, *, limit: int = 120, backwards: bool = False) -> dict:
    """Press Tab (Shift+Tab when `backwards`) until the focused element satisfies the JavaScript
    predicate `predicate` (a function of the element, e.g. "el => el.textContent.trim() === 'Ouvrir'"),
    checking on each step that the focus is visible. Fails after `limit` presses."""
    key = "Shift+Tab" if backwards else "Tab"
    seen = []
    for _ in range(limit):
        page.keyboard.press(key)
        info = assert_focus_visible(page)
        if page.evaluate(f"() => ({predicate})(document.activeElement)"):
            return info
        seen.append(f"{info['tag']}#{info['id']} « {info['text'][:30]} »")
    raise AssertionError(f"{limit} presses of {key} never reached {predicate} on {page.url}; went through: "
                         + ", ".join(seen[-15:]))
