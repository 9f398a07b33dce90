"""The sweep writes, for many dossiers at once, exactly what the command functions write for
one (`commands.remind`, `commands.lapse`, `commands.close_after_payment_deadline`): same event,
same letter, same state — so the audit replays a swept dossier like any other."""
from __future__ import annotations

from datetime import datetime

from services import commands
from services.clock import FrozenClock
from services.sweep import sweep
from tests.helpers import Life
from tests.sweep_support import dossier, dossiers_with_open_request, events, every_history_verifies, notifications


def _event_facts(e, request_ids=()):
    data = dict(e.data)
    if data.get("request_id") in request_ids:
        data["request_id"] = "<request>"
    return (e.seq, e.command, e.state_before, e.state_after, e.actor, e.role, e.programme, data, e.reason, e.at)


def _letter(n, reference):
    context = dict(n.context)
    # the reference, and the portal link that carries it, are the only things that differ
    context["dossier"] = {k: v.replace(reference, "<ref>") if isinstance(v, str) else v
                          for k, v in context["dossier"].items()}
    return (n.kind, n.recipient_role, n.recipient_address, n.subject.replace(reference, "<ref>"),
            n.body_text.replace(reference, "<ref>"), n.body_html.replace(reference, "<ref>"), n.template_hash,
            n.status, n.attempts, n.next_attempt_at,
            {k: v for k, v in context.items() if k not in ("kinds", "requested_on")} | {"dossier": context["dossier"]})


def _versions(uow_factory, *ids):
    return [dossier(uow_factory, i).version for i in ids]


def test_a_swept_reminder_and_lapse_are_what_the_commands_write(uow_factory, clock, actors):
    # Two dossiers of one company, so that their letters can be compared word for word.
    by_command, by_sweep = dossiers_with_open_request(uow_factory, clock, actors, count=2, one_company=True,
                                                      requested_at="2021-03-01T10:00:00+01:00")
    req_command = events(uow_factory, by_command)[-1].data["request_id"]
    req_sweep = events(uow_factory, by_sweep)[-1].data["request_id"]

    reminder_time = FrozenClock(datetime.fromisoformat("2021-03-08T06:00:00+01:00"))
    with uow_factory() as uow:
        commands.remind(uow=uow, clock=reminder_time, dossier_id=by_command, request_id=req_command,
                        after_days=7, kind="documents_reminder")
    before = _versions(uow_factory, by_sweep)[0]
    assert sweep(uow_factory=uow_factory, clock=reminder_time).reminders == 1  # only the other one
    # The dossier's version moves, as with any command: a client holding the old one must re-read.
    assert _versions(uow_factory, by_sweep)[0] > before

    lapse_time = FrozenClock(datetime.fromisoformat("2021-03-31T06:00:00+02:00"))
    with uow_factory() as uow:
        commands.lapse(uow=uow, clock=lapse_time, dossier_id=by_command, request_id=req_command,
                       reason="pièces demandées non fournies au 31/03/2021")
    assert sweep(uow_factory=uow_factory, clock=lapse_time).lapsed == 1

    a, b = events(uow_factory, by_command), events(uow_factory, by_sweep)
    assert [_event_facts(e, (req_command,)) for e in a[-2:]] == [_event_facts(e, (req_sweep,)) for e in b[-2:]]
    da, db = dossier(uow_factory, by_command), dossier(uow_factory, by_sweep)
    assert (da.status, da.closed_at, da.updated_at) == (db.status, db.closed_at, db.updated_at)
    letters = {d.id: [n for n in notifications(uow_factory) if n.dossier_id == d.id and
                      n.kind in ("documents_reminder", "dossier_lapsed")] for d in (da, db)}
    assert [_letter(n, da.reference) for n in letters[da.id]] == [_letter(n, db.reference) for n in letters[db.id]]
    assert every_history_verifies(uow_factory)


def test_a_dossier_closed_by_the_payment_deadline_is_what_the_command_writes(uow_factory, clock, actors):
    lives = [Life(uow_factory, clock, actors).to_approved() for _ in range(2)]
    by_command, by_sweep = (life.dossier_id for life in lives)
    past_deadline = FrozenClock(datetime.fromisoformat("2023-07-03T06:00:00+02:00"))
    with uow_factory() as uow:
        commands.close_after_payment_deadline(uow=uow, clock=past_deadline, dossier_id=by_command)
    before = _versions(uow_factory, by_sweep)[0]
    assert sweep(uow_factory=uow_factory, clock=past_deadline).closed_after_deadline == 1
    assert _versions(uow_factory, by_sweep)[0] > before
    a, b = events(uow_factory, by_command)[-1], events(uow_factory, by_sweep)[-1]
    assert _event_facts(a) == _event_facts(b)
    da, db = dossier(uow_factory, by_command), dossier(uow_factory, by_sweep)
    assert (da.status, da.cancelled_remainder, da.closed_at) == (db.status, db.cancelled_remainder, db.closed_at)
    assert db.cancelled_remainder == da.aid_total
    [la] = [n for n in notifications(uow_factory, "dossier_closed") if n.dossier_id == by_command]
    [lb] = [n for n in notifications(uow_factory, "dossier_closed") if n.dossier_id == by_sweep]
    assert _letter(la, da.reference) == _letter(lb, db.reference)
    assert "17\u00a0500,00\u00a0€" in lb.body_text
    assert every_history_verifies(uow_factory)
