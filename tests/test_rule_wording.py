"""One wording of the rules (services/wording.py): every rule id the code raises — a
`RuleViolation` or one of its subclasses, an API `Problem`, a problem answer — has its French
title, so that no refusal reaches a person under a bare status title (« Demande refusée ») or an
identifier; the API answers with those titles and the pages name the rules from the same module."""
from __future__ import annotations

import ast
from pathlib import Path

from api.problems import problem_body
from services.wording import RULE_LABELS, RULE_TITLES, STATUS_TITLES

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rules", "states", "programmes", "services", "db", "notifications", "workflows", "api", "web", "cli")
# Calls whose first argument is a rule id (RuleViolation and its subclasses taking the rule first).
RULE_FIRST = {"RuleViolation", "LinkRefused", "LetterUnavailable", "HistoryNotVerified"}
# Calls whose `rule=` keyword is a rule id answered as a refusal.
RULE_KEYWORD = RULE_FIRST | {"InvalidInput", "InvalidIdentifier", "Problem", "problem_response", "problem_body"}


def _name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _raised_rule_ids() -> dict[str, str]:
    """Rule id → where it is raised (the first place found), read from the source as written.
    Rule ids chosen at run time (held in a variable) are not seen: those modules' tests name them."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                name = _name(node)
                literals = [kw.value for kw in node.keywords if kw.arg == "rule" and name in RULE_KEYWORD]
                in_subclass = name == "__init__" and isinstance(node.func, ast.Attribute) and \
                    isinstance(node.func.value, ast.Call) and _name(node.func.value) == "super"
                if (name in RULE_FIRST or in_subclass) and node.args and not any(kw.arg == "rule" for kw in node.keywords):
                    literals.append(node.args[0])
                for value in literals:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value.isidentifier():
                        found.setdefault(value.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_rule_the_code_raises_has_a_french_title():
    raised = _raised_rule_ids()
    assert {"advance_cap", "assignment_taken", "link_expired", "not_found"} <= set(raised)  # the scan sees them
    missing = {rule: where for rule, where in raised.items() if rule not in RULE_TITLES}
    assert not missing, f"rule ids without a title in services/wording.RULE_TITLES: {missing}"


def test_a_refusal_of_the_api_carries_its_rule_s_title_and_falls_back_on_its_status():
    assert problem_body(422, "…", rule="assignment_taken")["title"] == "Dossier déjà affecté"
    assert problem_body(422, "…", rule="advance_cap")["title"] == "Plafond d'avance dépassé"
    assert problem_body(503, "…")["title"] == STATUS_TITLES[503] == "Service indisponible"


def test_the_titles_and_names_of_the_rules_are_french_sentences_not_identifiers():
    for rule, text in {**RULE_TITLES, **RULE_LABELS}.items():
        assert text and text != rule and "_" not in text, (rule, text)
    for rule, title in RULE_TITLES.items():
        assert title[0].isupper(), (rule, title)  # a title, as the API's `title` reads
