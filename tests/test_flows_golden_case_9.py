"""Golden case 9 (document chase and lapse), walked day by day through the real Prefect flows
and a real SMTP server: every message arrives exactly once, on its day, with the right French
text. Time is frozen by the flows' `at` parameter: each day, a sweep at 6:00 and 18:00, the
officers' digest at 7:30, a delivery after each of them and after each command of the day."""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

import pytest

from rules.calendar import PARIS, paris_date
from rules.errors import RuleViolation
from services import commands
from services.clock import FrozenClock
from services.scenario import DISPATCH, _check, _snapshot
from tests.helpers import SCENARIOS
from workflows import runtime
from workflows.flows import daily_digest, deliver_notifications, sweep_deadlines

pytest_plugins = ["tests.conftest_prefect"]
pytestmark = pytest.mark.prefect

GOLDEN_9 = SCENARIOS / "golden" / "golden-9-document-chase-lapse.json"
SCENARIO = json.loads(GOLDEN_9.read_text("utf-8"))
APPLICANT = "contact+732829320@entreprises.usine.invalid"
OFFICER = "officer.scenario@agents.usine.invalid"  # "officer (scénario)", the runner's officer


def paris(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS)


@pytest.fixture
def smtp():
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink()
    yield sink
    sink.stop()


def test_golden_case_9_walked_day_by_day_through_the_flows_delivers_each_letter_once_on_its_day(
        prefect_harness, uow_factory, smtp):
    steps = SCENARIO["steps"]
    timeline: list[tuple[datetime, str, dict | None]] = []
    for step in steps:
        instant = datetime.fromisoformat(step["at"])
        timeline.append((instant, "sweep" if step["do"] == "sweep" else "command", step))
    first_day = paris_date(datetime.fromisoformat(steps[0]["at"]))
    last_day = paris_date(datetime.fromisoformat(steps[-1]["at"])) + timedelta(days=1)
    scenario_sweeps = {datetime.fromisoformat(s["at"]) for s in steps if s["do"] == "sweep"}
    day = first_day
    while day <= last_day:
        for hour, what in ((6, "sweep"), (18, "sweep"), (7, "digest")):
            instant = paris(day, hour, 30 if what == "digest" else 0)
            if not (what == "sweep" and instant in scenario_sweeps):
                timeline.append((instant, what, None))
        day += timedelta(days=1)
    timeline.sort(key=lambda item: item[0])

    arrivals: list[tuple[date, object]] = []   # (Paris day of arrival, message)
    dossier_id = None
    clock = FrozenClock(timeline[0][0])
    failures = []

    def deliver_at(instant: datetime) -> None:
        report = deliver_notifications(at=instant.isoformat())
        assert not report["stopped"] and report["dead"] == 0, report
        arrivals.extend((paris_date(instant), message) for message in smtp.handler.take())

    with runtime.using(uow_factory=uow_factory, sender=smtp.sender()):
        for instant, what, step in timeline:
            if what == "command":
                clock.set(instant)
                needs_dossier, runner = DISPATCH[step["do"]]
                actor = commands.Actor(name=f"{step['as']} (scénario)", role=step["as"])
                refused = None
                try:
                    with uow_factory() as uow:
                        outcome = runner(step, uow, clock, actor, dossier_id, SCENARIO["programme"])
                    dossier_id = dossier_id or outcome.dossier_id
                except RuleViolation as exc:
                    refused = exc.as_dict()
                failures += [c for c in _check(step.get("expect"), _snapshot(uow_factory, dossier_id), refused,
                                               step["do"]) if not c["ok"]]
                deliver_at(instant + timedelta(minutes=5))
            elif what == "sweep":
                report = sweep_deadlines(at=instant.isoformat())
                assert not report["errors"], report
                if step is not None:
                    failures += [c for c in _check(step.get("expect"), _snapshot(uow_factory, dossier_id), None,
                                                   step["at"]) if not c["ok"]]
                deliver_at(instant + timedelta(minutes=5))
            else:
                result = daily_digest(at=instant.isoformat())
                assert not result["digest"]["errors"], result
                arrivals.extend((paris_date(instant), message) for message in smtp.handler.take())
    assert failures == []
    final = _snapshot(uow_factory, dossier_id)
    assert failures + [c for c in _check(SCENARIO["expect"], final, None, "expect") if not c["ok"]] == []

    to_applicant = [(day.isoformat(), m.kind) for day, m in arrivals if m.to == APPLICANT]
    assert to_applicant == [
        ("2021-02-22", "candidacy_received"),
        ("2021-03-01", "documents_requested"),
        ("2021-03-08", "documents_reminder"),
        ("2021-03-15", "documents_reminder"),
        ("2021-03-22", "documents_final_notice"),
        ("2021-03-31", "dossier_lapsed"),
    ]
    letters = {(day.isoformat(), m.kind): m for day, m in arrivals if m.to == APPLICANT}
    ref = letters[("2021-02-22", "candidacy_received")].subject.split(" ")[1]
    assert ref.startswith("OCC-2021-")

    ack = letters[("2021-02-22", "candidacy_received")]
    assert ack.subject == f"Dossier {ref} — Accusé de réception de votre candidature"
    assert "déposée le 22 février 2021 à 10\u00a0h\u00a000" in ack.text

    request = letters[("2021-03-01", "documents_requested")]
    assert "  - attestation de régularité fiscale" in request.text
    assert "classé sans suite le 31 mars 2021" in request.text

    first = letters[("2021-03-08", "documents_reminder")]
    assert first.subject == f"Dossier {ref} — Relance : pièces manquantes à transmettre avant le 31 mars 2021"
    assert "Première relance (J+7)." in first.text
    assert "Par courriel du 1er mars 2021, nous vous avons demandé de compléter votre dossier." in first.text
    second = letters[("2021-03-15", "documents_reminder")]
    assert "Deuxième relance (J+14)." in second.text

    final_notice = letters[("2021-03-22", "documents_final_notice")]
    assert final_notice.subject == f"Dossier {ref} — Dernier rappel avant caducité le 31 mars 2021"
    assert "Malgré notre demande du 1er mars 2021 et nos relances" in final_notice.text

    lapse = letters[("2021-03-31", "dossier_lapsed")]
    assert lapse.subject == f"Dossier {ref} — Caducité et classement sans suite de votre dossier"
    assert "est déclaré caduc depuis le 31 mars 2021 et classé sans suite" in lapse.text
    assert "pièces demandées non fournies au 31/03/2021" in lapse.text
    assert "Voies et délais de recours" in lapse.text
    for letter in letters.values():
        assert "Le service Industrie du Futur — Région Occitanie" in letter.text
        assert '<html lang="fr">' in letter.html

    # The officer's digest: each working day the lapse (31 March) is within 7 days, once.
    digests = [(day.isoformat(), m) for day, m in arrivals if m.to == OFFICER]
    assert [d for d, _ in digests] == ["2021-03-24", "2021-03-25", "2021-03-26", "2021-03-29", "2021-03-30"]
    assert all(m.kind == "daily_digest" for _, m in digests)
    assert digests[0][1].subject == "Vos échéances du 24 mars 2021 : 1 dossier"
    assert f"{ref} — Atelier Garonne SAS (instruction de recevabilité) : échéance le 31 mars 2021" in digests[0][1].text

    # Nothing else was ever sent, and nothing twice.
    assert len(arrivals) == len(to_applicant) + len(digests)
    assert len({m.message_id for _, m in arrivals}) == len(arrivals)
