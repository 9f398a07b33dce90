"""Work sharing (issue 19, part 4): the head routes dossiers, an officer takes an unassigned one
or hands its own over with a note; each assignment is one event of the dossier's history, in the
change's own unit of work; the guards name their rule and write nothing; teams feed the queue's
« À mon équipe »; a bulk action runs one command per dossier and a refusal never blocks the others."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select
from web_support import World, actor, seed_users, use_fast_passwords

from db import models as m
from rules.errors import InvalidInput, NotAllowed, RuleViolation
from services import assignment, commands
from services.audit.replay import replay_dossier
from services.audit.verify import verify_dossier
from services.bulk_actions import run_bulk
from services.demo_teams import DEMO_COLLEAGUES, seed_demo_teams
from services.users import create_user
from services.wording import describe
from web.queue import QueueFilters, work_queue

COLLEAGUE = "agent2.occitanie"


@pytest.fixture
def world(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    w = World(uow_factory)
    seed_users(uow_factory, w.clock)
    seed_demo_teams(uow_factory, w.clock)
    return w


def _dossier(world, did):
    with world.uow_factory() as uow:
        d = uow.dossier(did)
        return d.officer, d.version, d.status


def _events(world, did):
    with world.uow_factory() as uow:
        return [{"command": e.command, "data": e.data, "state_before": e.state_before, "state_after": e.state_after}
                for e in uow.session.scalars(select(m.Event).where(m.Event.dossier_id == did).order_by(m.Event.seq))]


def test_an_officer_takes_an_unassigned_dossier_and_its_history_says_so(world):
    did = world.dossier("submitted")
    assert _dossier(world, did)[0] is None
    out = world.run(assignment.take_dossier, "agent.occitanie", dossier_id=did)
    assert out.details["kind"] == "take"
    officer, version, status = _dossier(world, did)
    assert (officer, status) == ("agent.occitanie", "submitted")
    last = _events(world, did)[-1]
    assert last["command"] == "assign_officer" and last["state_before"] == last["state_after"] == "submitted"
    assert describe(last, {"agent.occitanie": "Claire Martin"}) == "Dossier pris en charge par Claire Martin."


def test_the_head_routes_any_dossier_of_the_region_to_a_colleague(world):
    did = world.dossier("eligibility_review")  # taken by agent.occitanie
    world.run(assignment.assign_officer, "cheffe.occitanie", dossier_id=did, officer=COLLEAGUE)
    assert _dossier(world, did)[0] == COLLEAGUE
    last = _events(world, did)[-1]
    assert last["data"]["kind"] == "route" and last["data"]["previous"] == "agent.occitanie"
    assert describe(last, {COLLEAGUE: "Julien Fabre", "agent.occitanie": "Claire Martin"}) == \
        "Dossier affecté à Julien Fabre (auparavant Claire Martin)."


def test_an_officer_hands_its_dossier_over_with_a_note_and_the_colleague_finds_it_in_its_queue(world):
    did = world.dossier("eligibility_review")
    world.run(assignment.assign_officer, "agent.occitanie", dossier_id=did, officer=COLLEAGUE,
              note="Relancer pour le Kbis, l'entreprise a déménagé.")
    last = _events(world, did)[-1]
    assert last["data"]["kind"] == "handover"
    assert describe(last, {}).endswith("— note : Relancer pour le Kbis, l'entreprise a déménagé.")
    colleague = actor(world.uow_factory, COLLEAGUE)
    with world.uow_factory() as uow:
        mine = work_queue(uow, colleague, QueueFilters(assigned="me"), world.clock.now().date())
    assert [x["id"] for x in mine["items"]] == [did]


@pytest.mark.parametrize("who, target, note, rule", [
    ("agent.occitanie", "agent.pays-de-la-loire", "note", "assignee_not_officer"),   # another region's officer
    ("cheffe.occitanie", "finances.occitanie", None, "assignee_not_officer"),         # not an officer
    ("cheffe.occitanie", "personne.inconnue", None, "assignee_not_officer"),          # no such account
    ("agent2.occitanie", "agent3.occitanie", "note", "assignment_not_yours"),         # not its dossier
    ("agent2.occitanie", "agent2.occitanie", None, "assignment_taken"),              # already someone's
    ("agent.occitanie", "agent2.occitanie", None, "handover_note_missing"),           # a handover says why
    ("cheffe.occitanie", "agent.occitanie", None, "assignment_unchanged"),
    ("finances.occitanie", "agent2.occitanie", None, "not_allowed"),                  # finance does not assign
])
def test_a_refused_assignment_names_its_rule_and_writes_nothing(world, who, target, note, rule):
    did = world.dossier("eligibility_review")
    before = _dossier(world, did), len(_events(world, did))
    with pytest.raises(RuleViolation) as refused:
        world.run(assignment.assign_officer, who, dossier_id=did, officer=target, note=note)
    assert refused.value.rule == rule, refused.value.message
    assert (_dossier(world, did), len(_events(world, did))) == before


def test_a_finished_dossier_is_assigned_to_no_one(world):
    did = world.dossier("submitted")
    world.run(commands.declare_ineligible, "agent.occitanie", dossier_id=did, reason="Activité non industrielle.")
    with pytest.raises(RuleViolation) as refused:
        world.run(assignment.assign_officer, "cheffe.occitanie", dossier_id=did, officer=COLLEAGUE)
    assert refused.value.rule == "assignment_dossier_finished"
    assert "rejeté" in refused.value.message.lower() or "terminé" in refused.value.message


def test_another_regions_head_cannot_route_the_dossier(world):
    did = world.dossier("submitted")
    with pytest.raises(NotAllowed):
        world.run(assignment.assign_officer, "chef.pays-de-la-loire", dossier_id=did, officer="agent.pays-de-la-loire")


def test_the_audit_replays_and_verifies_a_dossier_with_assignments(world):
    did = world.dossier("eligibility_review")
    world.run(assignment.assign_officer, "cheffe.occitanie", dossier_id=did, officer=COLLEAGUE)
    world.run(commands.request_documents, COLLEAGUE, dossier_id=did, kinds=["rib"])
    with world.uow_factory() as uow:
        replayed = replay_dossier(uow.session, did, catalogue=uow.catalogue)
        assert replayed.ok, [x.as_dict() for x in replayed.discrepancies]
        assert replayed.state["officer"] == COLLEAGUE
        assert verify_dossier(uow.session, did).ok


def test_the_queue_filters_mine_my_team_and_unassigned(world):
    unassigned = world.dossier("submitted")
    claire = world.dossier("eligibility_review")  # agent.occitanie, team occ-ouest with agent2
    julien = world.dossier("eligibility_review")
    world.run(assignment.assign_officer, "cheffe.occitanie", dossier_id=julien, officer=COLLEAGUE)
    sophie = world.dossier("eligibility_review")
    world.run(assignment.assign_officer, "cheffe.occitanie", dossier_id=sophie, officer="agent3.occitanie")
    today = world.clock.now().date()

    def ids(username, view):
        with world.uow_factory() as uow:
            return {x["id"] for x in work_queue(uow, actor(world.uow_factory, username),
                                                QueueFilters(assigned=view), today)["items"]}

    assert ids("agent.occitanie", "me") == {claire}
    assert ids("agent.occitanie", "team") == {claire, julien}   # not Sophie: another team
    assert ids("agent3.occitanie", "team") == {sophie}
    assert ids("cheffe.occitanie", "team") == {claire, julien, sophie}  # every team of the region
    assert ids("agent.occitanie", "none") == {unassigned}


def test_the_head_composes_teams_of_its_region_only(world):
    head = actor(world.uow_factory, "cheffe.occitanie")
    with world.uow_factory() as uow:
        team = assignment.create_team(uow=uow, clock=world.clock, actor=head, code="occ-nord",
                                      name="Équipe Nord", region="Occitanie")
    assert team.members == ()
    with world.uow_factory() as uow:
        team = assignment.add_member(uow=uow, clock=world.clock, actor=head, team="occ-nord", username=COLLEAGUE)
    assert [u for u, _ in team.members] == [COLLEAGUE]
    with world.uow_factory() as uow, pytest.raises(RuleViolation) as refused:
        assignment.add_member(uow=uow, clock=world.clock, actor=head, team="occ-nord",
                              username="agent.pays-de-la-loire")
    assert refused.value.rule == "assignee_not_officer"
    with world.uow_factory() as uow, pytest.raises(NotAllowed):
        assignment.create_team(uow=uow, clock=world.clock, actor=head, code="pdl-sud", name="Sud",
                               region="Pays de la Loire")
    with world.uow_factory() as uow:
        team = assignment.remove_member(uow=uow, clock=world.clock, actor=head, team="occ-nord", username=COLLEAGUE)
    assert team.members == ()


def test_the_demo_teams_give_each_region_a_team_of_named_officers(world):
    with world.uow_factory() as uow:
        teams = assignment.list_teams(uow)
    assert {t.region for t in teams} == {"Occitanie", "Pays de la Loire", "Nouvelle-Aquitaine"}
    names = {n for t in teams for _, n in t.members}
    assert "Julien Fabre, chargé de mission (Occitanie)" in names and all("," in n for n in names)
    assert len(seed_demo_teams(world.uow_factory, world.clock)) == len(teams)  # seeding again adds nothing
    assert {c["username"] for c in DEMO_COLLEAGUES} <= {u for t in teams for u, _ in t.members}


def test_a_bulk_assignment_runs_one_unit_of_work_per_dossier_and_a_refusal_blocks_no_other(world):
    ok = [world.dossier("submitted") for _ in range(3)]
    finished = world.dossier("submitted")
    world.run(commands.declare_ineligible, "agent.occitanie", dossier_id=finished, reason="Hors périmètre.")
    already = world.dossier("eligibility_review")
    events_before = len(_events(world, finished)), len(_events(world, already))
    head = actor(world.uow_factory, "cheffe.occitanie")
    results = run_bulk(world.uow_factory, world.clock, head, action="assign",
                       dossier_ids=[ok[0], finished, ok[1], already, ok[2]], officer=COLLEAGUE)
    assert [r.ok for r in results] == [True, False, True, True, True]
    refs = {r.dossier_id: r.reference for r in results}
    assert results[0].line == f"{refs[ok[0]]} — affecté à Julien Fabre, chargé de mission (Occitanie)"
    assert results[1].line.startswith(f"{refs[finished]} — refusé : Le dossier est terminé")
    assert results[1].rule == "assignment_dossier_finished"
    assert all(_dossier(world, did)[0] == COLLEAGUE for did in ok + [already])
    assert len(_events(world, finished)) == events_before[0]
    assert len(_events(world, already)) == events_before[1] + 1


def test_a_bulk_document_request_and_a_bulk_proposal_use_the_house_commands(world):
    in_review = [world.dossier("eligibility_review") for _ in range(2)]
    submitted = world.dossier("submitted")
    world.run(commands.declare_ineligible, "agent.occitanie", dossier_id=submitted, reason="Hors périmètre.")
    officer = actor(world.uow_factory, "agent.occitanie")
    results = run_bulk(world.uow_factory, world.clock, officer, action="request_documents",
                       dossier_ids=in_review + [submitted], kinds=["rib", "kbis"])
    assert [r.ok for r in results] == [True, True, False]
    assert results[0].line.startswith(f"{results[0].reference} — pièces demandées (")
    assert " ; caducité le " in results[0].line
    assert results[2].line.startswith(f"{results[2].reference} — refusé : ")
    with world.uow_factory() as uow:
        open_requests = uow.session.scalar(select(func.count()).select_from(m.DocumentRequest)
                                           .where(m.DocumentRequest.status == "open"))
    assert open_requests == 2
    ready = world.dossier("action_plan")
    world.run(commands.provide_documents, "entreprise.garonne", dossier_id=ready, kinds=["action_plan", "phase2_quote"])
    world.run(commands.submit_action_plan, "entreprise.garonne", dossier_id=ready,
              phase2={"days": 20, "day_rate": "1300.00"})
    world.session_sitting_today("CP-TEST-BULK")
    results = run_bulk(world.uow_factory, world.clock, officer, action="propose", dossier_ids=[ready, submitted],
                       session="CP-TEST-BULK")
    assert results[0].ok and "proposé à la séance CP-TEST-BULK (aide proposée" in results[0].line
    assert not results[1].ok and results[1].line.startswith(results[1].reference + " — refusé : ")
    assert _dossier(world, ready)[2] == "ready_for_vote"


def test_a_bulk_action_without_a_selection_or_with_an_unknown_action_is_refused_before_anything(world):
    head = actor(world.uow_factory, "cheffe.occitanie")
    with pytest.raises(InvalidInput) as refused:
        run_bulk(world.uow_factory, world.clock, head, action="assign", dossier_ids=[], officer=COLLEAGUE)
    assert refused.value.field == "dossiers"
    with pytest.raises(InvalidInput) as refused:
        run_bulk(world.uow_factory, world.clock, head, action="delete", dossier_ids=[1])
    assert refused.value.field == "action"


def test_a_dossier_out_of_scope_in_a_bulk_selection_is_named_as_not_found(world):
    did = world.dossier("submitted")
    head = actor(world.uow_factory, "chef.pays-de-la-loire")
    with world.uow_factory() as uow:
        create_user(uow=uow, clock=world.clock, username="agent9.pdl", password="mot-de-passe-long-9",
                    role="officer", regions=["Pays de la Loire"], display_name="Paul Henry")
    results = run_bulk(world.uow_factory, world.clock, head, action="assign", dossier_ids=[did], officer="agent9.pdl")
    assert not results[0].ok and results[0].reference is None and "introuvable" in results[0].line
    assert _dossier(world, did)[0] is None


def test_the_head_composes_a_team_from_the_command_line(world, monkeypatch):
    import json

    from typer.testing import CliRunner

    import cli.api
    from cli.main import app as cli_app
    from cli.main import register_extensions

    monkeypatch.setattr(cli.api, "_factory", lambda: world.uow_factory)
    monkeypatch.setattr(cli.api, "_clock", lambda: world.clock)
    register_extensions()
    runner = CliRunner()
    made = runner.invoke(cli_app, ["users", "teams", "create", "occ-nord", "--name", "Équipe Nord",
                                   "--region", "Occitanie", "--as", "cheffe.occitanie"])
    assert made.exit_code == 0, made.output
    added = runner.invoke(cli_app, ["users", "teams", "add", "occ-nord", "agent3.occitanie", "--as", "cheffe.occitanie"])
    assert added.exit_code == 0 and "Sophie Lambert" in added.output
    refused = runner.invoke(cli_app, ["users", "teams", "add", "occ-nord", "agent2.pays-de-la-loire",
                                      "--as", "cheffe.occitanie"])
    assert refused.exit_code == 1 and "assignee_not_officer" in refused.output
    other = runner.invoke(cli_app, ["users", "teams", "add", "pdl-industrie", "agent3.occitanie",
                                    "--as", "cheffe.occitanie"])
    assert other.exit_code == 1 and "not_allowed" in other.output
    listed = json.loads(runner.invoke(cli_app, ["users", "teams", "list", "--json", "--region", "Occitanie"]).output)
    assert {t["code"]: [m_["username"] for m_ in t["members"]] for t in listed}["occ-nord"] == ["agent3.occitanie"]
    removed = runner.invoke(cli_app, ["users", "teams", "remove", "occ-nord", "agent3.occitanie"])
    assert removed.exit_code == 0 and "aucun membre" in removed.output
