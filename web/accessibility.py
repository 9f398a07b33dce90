"""The accessibility statement of the workspace (« Déclaration d'accessibilité », on the RGAA 4.1
model) and the conformity mention every page's footer carries: one place for both.

No RGAA audit has been made. RGAA's obligations say that without a valid audit result the
mention is « non conforme » — even though automated checks (axe-core, tests/test_web_accessibility.py)
find no serious or critical violation: they test only part of the criteria. When an audit is made,
set CONFORMITY (« partiellement conforme » from 50 % of the criteria met, « totalement conforme »
at 100 %), AUDIT and STATEMENT_DATE, and list its non-conformities in the template."""
from __future__ import annotations

import re
from datetime import date

# Legal mention (RGAA obligations): « totalement conforme », « partiellement conforme » or « non conforme ».
CONFORMITY = "non conforme"
# The result of an RGAA audit ("taux", auditor, date), None while there has been none.
AUDIT: dict | None = None
STATEMENT_DATE = date(2026, 12, 4)
RGAA_VERSION = "4.1.2"
# The automated checks' environment, as pinned by tests/a11y/package-lock.json (a test keeps them equal).
AXE_CORE_VERSION = "4.14.1"
BROWSER = "Chromium 156 (paquet Debian), piloté par Playwright"
SERVICE_NAME = "Usine — instruction des aides Industrie du Futur"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def contact_link(contact: str | None) -> dict | None:
    """The feedback contact (USINE_ACCESSIBILITY_CONTACT): an address becomes a mailto: link, an
    https:// address a link to its form; None when the deployment set none."""
    if not contact:
        return None
    contact = contact.strip()
    if _EMAIL.match(contact):
        return {"href": f"mailto:{contact}", "text": contact}
    if contact.startswith("https://"):
        return {"href": contact, "text": contact}
    return {"href": None, "text": contact}


def footer_mention() -> str:
    return f"Accessibilité : {CONFORMITY}"
