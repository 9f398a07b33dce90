from pathlib import Path

import pytest

from programmes import Catalogue, ProgrammeFileError, default_catalogue, load_programme_file
from rules.errors import NotAllowed, RuleViolation, UnknownFigure
from states import lifecycle
from states.lifecycle import EXIT_STATES, FINAL_STATES, LOAN_STATES, STATES, TRANSITIONS, fire

FILES = Path(__file__).resolve().parents[1] / "programmes" / "files"


def test_the_lifecycle_has_the_twelve_states_of_the_spec_and_the_three_of_loans_and_lines():
    assert STATES == ("draft", "submitted", "eligibility_review", "diagnostic", "action_plan", "instruction",
                      "ready_for_vote", "approved", "in_payment", "in_repayment", "in_default", "closed", "rejected",
                      "withdrawn", "lapsed")


def test_any_non_final_state_can_be_withdrawn_or_lapse_until_a_loan_is_disbursed():
    for shape in ("diagnostic", "instruction", "aid"):
        for state in EXIT_STATES:
            assert fire(state, "withdraw", role="applicant", shape=shape) == "withdrawn"
            assert fire(state, "lapse", role="system", shape=shape) == "lapsed"
    for state in (*FINAL_STATES, *LOAN_STATES):
        with pytest.raises(NotAllowed):
            fire(state, "withdraw", role="applicant", shape="instruction")


def test_a_line_without_a_diagnostic_goes_from_eligibility_to_instruction_and_one_with_it_to_diagnostic():
    guards = {"candidacy_documents_complete": lambda: None, "candidacy_documents_reviewed": lambda: None,
              "company_eligible": lambda: None, "line_amounts": lambda: None}
    assert fire("eligibility_review", "declare_eligible", role="officer", guards=guards, shape="instruction") == "instruction"
    assert fire("eligibility_review", "declare_eligible", role="officer", guards=guards, shape="diagnostic") == "diagnostic"
    with pytest.raises(NotAllowed):
        fire("instruction", "accept_diagnostic", role="officer", shape="instruction")
    with pytest.raises(NotAllowed):
        fire("approved", "disburse_loan", role="finance", guards={"loan_to_disburse": lambda: None}, shape="diagnostic")


def test_only_the_head_writes_off_and_only_a_loan_in_default():
    assert fire("in_default", "write_off", role="head", shape="instruction") == "closed"
    with pytest.raises(NotAllowed):
        fire("in_default", "write_off", role="finance", shape="instruction")
    with pytest.raises(NotAllowed):
        fire("in_repayment", "write_off", role="head", shape="instruction")


def test_the_mission_order_is_enforced():
    assert fire("submitted", "take_for_review", role="officer") == "eligibility_review"
    with pytest.raises(NotAllowed):
        fire("submitted", "accept_diagnostic", role="officer")
    with pytest.raises(NotAllowed):
        fire("action_plan", "vote_approved", role="head")


def test_the_wrong_role_is_refused_with_not_allowed_naming_the_role_and_the_command_in_french():
    with pytest.raises(NotAllowed) as refused:
        fire("ready_for_vote", "vote_approved", role="officer", guards={"on_session_agenda": lambda: None,
                                                                         "amounts_within_caps": lambda: None})
    assert refused.value.rule == "not_allowed" and refused.value.field == "as"
    assert refused.value.message == ("Le rôle « chargé(e) de mission » ne peut pas faire « vote favorable » "
                                     "(rôles autorisés : chef(fe) de service).")


def test_a_command_out_of_its_state_is_refused_in_french_naming_the_state():
    with pytest.raises(NotAllowed) as refused:
        fire("in_repayment", "disburse_loan", role="finance", shape="instruction")
    assert refused.value.field == "do"
    assert refused.value.message == "« versement du prêt » n'est pas possible dans l'état « en remboursement »."
    with pytest.raises(NotAllowed) as absent:
        fire("eligibility_review", "accept_diagnostic", role="officer", shape="instruction")
    assert absent.value.message.startswith("« acceptation du diagnostic » n'existe pas dans ce parcours")


def test_guards_run_in_their_declared_order_and_a_refusal_leaves_the_state():
    calls = []

    def ok(name):
        return lambda: calls.append(name)

    def refuse():
        calls.append("company_eligible")
        raise RuleViolation("size", "too big")

    with pytest.raises(RuleViolation):
        fire("eligibility_review", "declare_eligible", role="officer",
             guards={"candidacy_documents_complete": ok("candidacy_documents_complete"),
                     "candidacy_documents_reviewed": ok("candidacy_documents_reviewed"),
                     "company_eligible": refuse, "phase1_days": ok("phase1_days")})
    assert calls == ["candidacy_documents_complete", "candidacy_documents_reviewed", "company_eligible"]


def test_every_guard_named_in_the_table_is_a_plain_name():
    for spec in TRANSITIONS:
        assert all(g.isidentifier() for g in spec.guards)
        assert set(spec.roles) <= set(lifecycle.ROLES)


def test_the_status_is_assigned_in_one_place_only():
    """No code but the lifecycle's `_move` writes a dossier's status."""
    import re

    root = Path(__file__).resolve().parents[1]
    assignment = re.compile(r"\b(dossier|d)\.status\s*=[^=]")
    found = []
    for folder in ("services", "api", "workflows", "web", "cli", "db"):
        for path in (root / folder).rglob("*.py"):
            for line in path.read_text("utf-8").splitlines():
                if assignment.search(line):
                    found.append((str(path.relative_to(root)), line.strip()))
    assert found == [("services/commands/base.py", "dossier.status = after")]


def test_the_state_chart_prints_as_mermaid():
    chart = lifecycle.mermaid()
    assert chart.startswith("stateDiagram-v2")
    assert "ready_for_vote --> approved: vote_approved" in chart


def test_the_three_seed_programmes_load_beside_the_two_example_configurations():
    catalogue = default_catalogue()
    assert catalogue.ids() == ["naq-udf4", "naq-udf4-exemple", "occitanie-prif", "pdl-ami-idf", "pdl-ami-idf-exemple"]
    assert [p.status for p in catalogue.all() if p.id.endswith("-exemple")] == ["example", "example"]
    occ = catalogue.latest("occitanie-prif")
    assert str(occ.money.day_rate_cap) == "1200.00" and str(occ.money.pathway_cap) == "36000.00"
    assert occ.phase(2).max_days == 25 and str(occ.phase(2).advance_max_rate) == "0.70"
    assert occ.money.expense_cutoff.isoformat() == "2022-12-31"


def test_unknown_figures_refuse_any_computation_that_needs_them():
    naq = default_catalogue().latest("naq-udf4")
    assert naq.money.day_rate_cap is None
    with pytest.raises(UnknownFigure) as refused:
        naq.require(naq.money.day_rate_cap, "money.day_rate_cap")
    assert refused.value.field == "money.day_rate_cap"


def test_a_bad_programme_file_fails_at_load_naming_file_field_and_reason(tmp_path):
    text = (FILES / "occitanie-prif.v1.toml").read_text("utf-8").replace('rate = "0.50"', 'rate = "1.50"')
    bad = tmp_path / "occitanie-prif.v1.toml"
    bad.write_text(text, "utf-8")
    with pytest.raises(ProgrammeFileError) as error:
        load_programme_file(bad)
    assert error.value.path.name == "occitanie-prif.v1.toml"
    assert error.value.field == "phases.1.rate" and "taux" in error.value.reason


def test_a_money_figure_written_as_a_float_is_refused(tmp_path):
    text = (FILES / "occitanie-prif.v1.toml").read_text("utf-8").replace('day_rate_cap = "1200.00"', "day_rate_cap = 1200.0")
    (tmp_path / "occitanie-prif.v1.toml").write_text(text, "utf-8")
    with pytest.raises(ProgrammeFileError) as error:
        Catalogue(tmp_path)
    assert error.value.field == "money.day_rate_cap"


def test_a_dossier_stays_bound_to_its_programme_version(tmp_path):
    text = (FILES / "occitanie-prif.v1.toml").read_text("utf-8")
    (tmp_path / "occitanie-prif.v1.toml").write_text(text, "utf-8")
    (tmp_path / "occitanie-prif.v2.toml").write_text(
        text.replace("version = 1", "version = 2").replace('day_rate_cap = "1200.00"', 'day_rate_cap = "1300.00"'), "utf-8")
    catalogue = Catalogue(tmp_path)
    assert catalogue.latest("occitanie-prif").version == 2
    assert str(catalogue.get("occitanie-prif", 1).money.day_rate_cap) == "1200.00"


def test_the_pays_de_la_loire_example_has_three_calls_a_year_and_three_lines_without_diagnostic():
    pdl = default_catalogue().latest("pdl-ami-idf-exemple")
    assert [w.code for w in pdl.windows if w.opens_on.year == 2020] == ["AMI-2020-1", "AMI-2020-2", "AMI-2020-3"]
    assert [line.shape for line in pdl.dossier_lines] == ["instruction"] * 3
    from datetime import date

    assert pdl.call_on(date(2020, 6, 30)).code == "AMI-2020-2" and pdl.call_on(date(2020, 7, 1)) is None
    line3 = pdl.phase(3)
    assert {i.kind for i in line3.instruments} == {"subsidy", "subsidised_loan"}
    assert str(line3.loan.annual_rate) == "0.0203" and str(line3.loan.max_amount) == "400000.00"


def test_a_fourth_region_is_a_data_file_and_a_call_overlapping_another_is_refused(tmp_path):
    text = (FILES / "pdl-ami-idf-exemple.v1.toml").read_text("utf-8")
    fourth = text.replace('id = "pdl-ami-idf-exemple"', 'id = "bretagne-exemple"').replace(
        'region = "Pays de la Loire"', 'region = "Bretagne"')
    (tmp_path / "bretagne-exemple.v1.toml").write_text(fourth, "utf-8")
    assert Catalogue(tmp_path).latest("bretagne-exemple").region == "Bretagne"
    overlapping = fourth.replace("opens_on = 2019-05-01", "opens_on = 2019-03-01")
    (tmp_path / "bretagne-exemple.v1.toml").write_text(overlapping, "utf-8")
    with pytest.raises(ProgrammeFileError) as bad:
        Catalogue(tmp_path)
    assert bad.value.field == "windows" and "chevauchent" in bad.value.reason


# Every guard passes: what is left is the machine's own refusal (no such command here, wrong role).
_EVERY_GUARD_PASSES = {g: (lambda: None) for spec in TRANSITIONS for g in spec.guards}


def _fired(state: str, role: str, shape: str) -> dict[str, str]:
    """What the machine of this line shape lets `role` fire from `state`: trigger -> new state."""
    out = {}
    for trigger in lifecycle.TRIGGERS:
        try:
            out[trigger] = fire(state, trigger, role=role, guards=_EVERY_GUARD_PASSES, shape=shape)
        except NotAllowed:
            continue
    return out


def test_the_commands_a_page_offers_a_role_are_exactly_those_the_machine_lets_it_fire():
    for shape in lifecycle.SHAPES:
        for state in STATES:
            for role in lifecycle.ROLES:
                fired = _fired(state, role, shape)
                assert lifecycle.allowed_triggers(state, role, shape) == list(fired), (shape, state, role)
                for trigger, after in fired.items():
                    assert (lifecycle.destinations(trigger, state, shape)[0] or state) == after


def test_the_roles_and_line_shapes_the_api_publishes_for_a_command_are_those_the_machines_accept():
    from api.routes_commands import COMMANDS, shapes_of
    from api.routes_documents import UPLOADERS

    def accepted(trigger: str) -> tuple[set[str], set[str]]:
        roles, shapes = set(), set()
        for shape in lifecycle.SHAPES:
            for state in STATES:
                for role in lifecycle.ROLES:
                    if trigger in _fired(state, role, shape):
                        roles.add(role)
                        shapes.add(shape)
        return roles - {"system"}, shapes

    for name, spec in COMMANDS.items():
        trigger = "vote_approved" if name == "record_vote" else name
        roles, shapes = accepted(trigger)
        assert set(spec.roles) == roles, name
        assert set(shapes_of(trigger)) == shapes, name
    assert set(UPLOADERS) == accepted("provide_documents")[0] == {"applicant", "consultant", "officer"}


def test_every_arrow_of_the_state_charts_is_a_move_the_machine_makes():
    from web.statechart import transitions_table

    for shape in (None, *lifecycle.SHAPES):
        arrows = [line.strip() for line in lifecycle.mermaid(shape).splitlines() if "-->" in line and "[*]" not in line]
        assert arrows
        for arrow in arrows:
            source, rest = arrow.split(" --> ")
            dest, trigger = rest.split(": ")
            assert any(_fired(source, role, s).get(trigger) == dest
                       for s in ((shape,) if shape else lifecycle.SHAPES) for role in lifecycle.ROLES), arrow
    assert [row["trigger"] for row in transitions_table()] == [spec.trigger for spec in TRANSITIONS]
    assert "instruction --> ready_for_vote: propose_for_vote" not in lifecycle.mermaid("diagnostic")
