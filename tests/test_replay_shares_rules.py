"""The audit replay folds the events through the same rules as the commands that wrote them,
never a copy of them (issue 15). Read from the source (AST and imports, nothing run): for each
computation, the replay's handler and the command both call the one named pure function of
`rules/` or `states/` — so a re-copy of the arithmetic in either place is caught here."""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPLAY = "services/audit/replay.py"


@lru_cache(maxsize=None)
def _tree(path: str) -> ast.Module:
    return ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)


@lru_cache(maxsize=None)
def _imports(path: str) -> dict[str, str]:
    """Local name -> what it names, module-qualified (`from rules import settlement` gives
    settlement -> rules.settlement; `from rules.settlement import payment_due` gives payment_due ->
    rules.settlement.payment_due), from every import of the module, function-level ones included."""
    names: dict[str, str] = {}
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
    return names


def _function(path: str, qualname: str) -> ast.FunctionDef:
    """The function `name` or the method `Class.name` of a module."""
    tree = _tree(path)
    *owner, name = qualname.split(".")
    scope: list[ast.stmt] = tree.body
    if owner:
        [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner[0]]
        scope = cls.body
    [fn] = [n for n in scope if isinstance(n, ast.FunctionDef) and n.name == name]
    return fn


def _called(path: str, qualname: str) -> set[str]:
    """What the function calls, each callee resolved through the module's imports."""
    imports = _imports(path)
    out: set[str] = set()
    for node in ast.walk(_function(path, qualname)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name):
            out.add(imports.get(f.id, f.id))
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            base = imports.get(f.value.id, f.value.id)
            out.add(f"{base}.{f.attr}")
    return out


# (what is computed, the pure function, the replay's handler, the command's function(s))
SHARED = [
    ("the amount a claim is paid, or recovered", "rules.settlement.payment_due",
     "_Fold.on_pay", [("services/commands/payments.py", "pay")]),
    ("the voted line of a phase", "rules.settlement.voted_line",
     "_Fold.on_pay", [("services/commands/payments.py", "_voted_line")]),
    ("every subsidy settled", "rules.settlement.subsidies_settled",
     "_Fold._subsidies_settled", [("services/commands/payments.py", "subsidies_settled")]),
    ("the loan settled", "rules.settlement.loan_settled",
     "_Fold._loan_settled", [("services/commands/payments.py", "loan_settled")]),
    ("the remainder cancelled at closing", "rules.settlement.cancelled_remainder",
     "_Fold._close", [("services/commands/payments.py", "_close"),
                      ("services/sweep.py", "_apply_payment_deadlines"),  # the set-based closing
                      ("services/previews.py", "_build")]),  # the letter previewed
    ("a lifecycle move", "states.lifecycle.fire",
     "_lifecycle_move", [("services/commands/base.py", "_move")]),
    ("the expense window", "rules.settlement.expense_window",
     "_Fold._window", [("services/commands/payments.py", "expense_window")]),
    ("the kind of a final claim's invoices", "rules.settlement.invoices_in_days",
     "_Fold.on_claim_payment", [("services/commands/payments.py", "claim_payment")]),
    ("the payment deadline set by the vote", "rules.settlement.payment_deadline",
     "_Fold.on_record_vote", [("services/commands/council.py", "record_vote")]),
    ("the de minimis amounts a vote grants", "rules.settlement.de_minimis_granted",
     "_Fold.on_record_vote", [("services/commands/council.py", "record_vote")]),
    ("the lapse day of a request for pieces", "rules.documents.request_lapses_on",
     "_Fold.on_request_documents", [("services/commands/documents.py", "request_documents")]),
    ("the day a reminder step is due", "rules.documents.reminder_due_on",
     "_Fold.on_remind", [("services/sweep.py", "latest_start_for")]),
    ("the loan the vote grants", "rules.loans.voted_loan_terms",
     "_Fold.on_disburse_loan", [("services/loans.py", "voted_loan")]),
    ("a disbursed loan's schedule", "rules.loans.schedule_of",
     "_Fold._plan", [("services/loans.py", "plan_of")]),
    ("the loan's figures", "rules.loans.loan_figures",
     "_Fold._loan_figures", [("services/loans.py", "loan_figures")]),
    ("a repayment's allocation", "rules.loans.apply_repayment",
     "_Fold.on_record_repayment", [("services/loans.py", "record_repayment")]),
]


@pytest.mark.parametrize("what, rule, handler, commands", SHARED, ids=[s[0] for s in SHARED])
def test_the_replay_and_the_command_call_the_same_rule(what, rule, handler, commands):
    assert rule in _called(REPLAY, handler), f"the replay's {handler} no longer calls {rule} for {what}"
    for path, function in commands:
        assert rule in _called(path, function), f"{path}:{function} no longer calls {rule} for {what}"


def test_the_shared_rules_are_pure():
    """`rules/` and `states/` read no table and call no service: the import contract says it for
    the packages, this for the two modules the replay shares most."""
    for path in ("rules/settlement.py", "rules/loans.py", "rules/documents.py", "states/lifecycle.py"):
        roots = {name.split(".")[0] for name in _imports(path).values()}
        assert not roots & {"sqlalchemy", "db", "services", "api", "web", "cli", "workflows"}, path


def _min_max_of_a_difference(path: str) -> list[int]:
    """Lines calling min() or max() on a subtraction: the shape of the payment cap and of the
    closing remainder."""
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max") \
                and any(isinstance(a, ast.BinOp) and isinstance(a.op, ast.Sub) for a in node.args):
            found.append(node.lineno)
    return found


@pytest.mark.parametrize("path", [REPLAY, "services/commands/payments.py", "services/commands/exits.py",
                                  "services/loans.py", "services/sweep.py", "services/previews.py"])
def test_no_payment_cap_or_closing_remainder_is_computed_outside_the_rules(path):
    assert _min_max_of_a_difference(path) == [], f"{path}: min/max of a difference — use rules.settlement"


def test_the_replay_asks_the_lifecycle_machines_not_a_table_of_its_own():
    names = _imports(REPLAY)
    lifecycle = {local for local, target in names.items() if target.startswith("states.lifecycle.")}
    assert "fire" in lifecycle
    assert not lifecycle & {"edges", "rows", "TRANSITIONS", "MACHINES", "destinations"}
    # …and no calendar of its own: the deadlines are the named rules.
    assert "rules.calendar.deadline" not in names.values()
