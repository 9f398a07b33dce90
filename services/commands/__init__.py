"""Use cases: one function per command of SCENARIOS.md, one unit of work each — grouped by the
concept they act on, one module each (docs/architecture.md, « Où trouver une règle »):

- `base`: the command frame every use case shares (`Actor`, `Outcome`, `_Command`, `_move` — the
  one place a dossier's status is assigned —, `_commit`, `check_scope`, the argument parsers);
- `candidacy`: start and submit a candidacy;
- `documents`: request, upload, provide and review the pieces;
- `instruction`: take for review, declare eligible or ineligible, accept the diagnostic, file the
  plan, and the aid computation from rule inputs;
- `council`: propose for a session's vote, record the vote;
- `payments`: claim and pay, the expense window, settlement and closing;
- `exits`: withdraw, lapse, remind, close after the payment deadline.

The modules import `base` and never one another in a cycle (candidacy, instruction → documents;
council → documents, instruction, payments; exits → payments). This package re-exports the public
names: `from services import commands; commands.pay(...)` reads as before."""
from services.commands.base import DOCUMENT_KINDS, SYSTEM, Actor, Outcome, check_scope
from services.commands.candidacy import insert_dossier, start_candidacy, submit_candidacy
from services.commands.council import propose_for_vote, record_vote
from services.commands.documents import (
    CONSULTANT_KINDS,
    PLACEHOLDER_NAMES,
    provide_documents,
    request_documents,
    review_document,
    upload_document,
)
from services.commands.exits import close_after_payment_deadline, lapse, remind, withdraw
from services.commands.instruction import (
    ACTION_THEMES,
    accept_diagnostic,
    compute_from_inputs,
    declare_eligible,
    declare_ineligible,
    parse_actions,
    rule_inputs,
    submit_action_plan,
    take_for_review,
)
from services.commands.payments import claim_payment, expense_window, loan_settled, pay, subsidies_settled

__all__ = [
    "ACTION_THEMES", "CONSULTANT_KINDS", "DOCUMENT_KINDS", "PLACEHOLDER_NAMES", "SYSTEM",
    "Actor", "Outcome", "check_scope",
    "start_candidacy", "submit_candidacy", "insert_dossier",
    "request_documents", "upload_document", "provide_documents", "review_document",
    "take_for_review", "declare_eligible", "declare_ineligible", "accept_diagnostic", "parse_actions",
    "submit_action_plan", "rule_inputs", "compute_from_inputs",
    "propose_for_vote", "record_vote",
    "claim_payment", "pay", "expense_window", "subsidies_settled", "loan_settled",
    "withdraw", "lapse", "remind", "close_after_payment_deadline",
]
