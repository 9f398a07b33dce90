"""An office document is accepted for what it is, not for the names its archive lists: a real
DOCX or ODT goes in; a ZIP that only pretends, a zip bomb, or a document carrying macros or an
executable is refused with its rule — through the API and the web workspace alike."""
from __future__ import annotations

import re

import pytest
from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import APPLICANT, GARONNE, counts, submit
from fastapi.testclient import TestClient
from office_files import CONTENT_TYPES, docx, fake_docx, odt, zip_bomb_docx, zip_of
from sqlalchemy import select

from db import models as m
from rules.errors import RuleViolation
from services.files import sniff
from services.office_package import DOCX, MAX_ENTRIES, ODT, inspect_package

VBA = ('<Override PartName="/word/vbaProject.bin" ContentType="application/vnd.ms-office.vbaProject"/>')
MACRO_MAIN = CONTENT_TYPES.replace("wordprocessingml.document.main+xml",
                                   "wordprocessingml.document.macroEnabled.main+xml").format(extra="")


def refused_rule(content: bytes) -> str:
    with pytest.raises(RuleViolation) as refused:
        inspect_package(content)
    assert refused.value.field == "file"
    return refused.value.rule


def test_a_real_minimal_docx_and_odt_are_recognised_as_such():
    assert inspect_package(docx()) == DOCX and sniff(docx()) == DOCX
    assert inspect_package(odt()) == ODT


def test_a_zip_listing_the_names_of_a_docx_is_not_a_docx():
    assert refused_rule(fake_docx()) == "office_package_invalid"
    # Its parts there and well-formed, but the main part's type declared nowhere.
    assert refused_rule(docx(content_types='<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')) \
        == "office_package_invalid"


def test_a_docx_whose_parts_are_not_well_formed_xml_is_refused():
    assert refused_rule(docx(document="<w:document><w:body>")) == "office_package_invalid"
    assert refused_rule(docx(content_types="<Types><Default")) == "office_package_invalid"


def test_a_docx_declaring_a_dtd_is_refused_before_any_entity_is_expanded():
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
              '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">&lol2;</w:document>')
    assert refused_rule(docx(document=laughs)) == "office_package_invalid"


def test_a_zip_bomb_of_one_gibibyte_in_one_megabyte_is_refused_from_the_directory_alone():
    bomb = zip_bomb_docx(1024)
    assert len(bomb) < 2 * 1024 * 1024
    with pytest.raises(RuleViolation) as refused:
        inspect_package(bomb)
    assert refused.value.rule == "office_package_too_large" and "100 Mo" in refused.value.message


def test_an_entry_expanding_a_thousand_times_is_refused_even_under_the_total_limit():
    bomb = zip_bomb_docx(4)   # 4 MiB of zeros in about 4 KiB
    with pytest.raises(RuleViolation) as refused:
        inspect_package(bomb)
    assert refused.value.rule == "office_package_too_large" and "fois sa taille" in refused.value.message


def test_an_archive_of_too_many_entries_is_refused():
    many = docx(extra={f"word/media/image{i}.png": b"x" for i in range(MAX_ENTRIES)})
    assert refused_rule(many) == "office_package_too_large"


@pytest.mark.parametrize("content", [
    docx(extra_types=VBA, extra={"word/vbaProject.bin": b"\xd0\xcf\x11\xe0 VBA"}),   # a VBA project
    docx(content_types=MACRO_MAIN),                                                 # a .docm renamed .docx
    docx(extra={"word/embeddings/setup.exe": b"MZ\x90\x00"}),                        # an executable inside
    docx(extra={"word/embeddings/oleObject1.bin": b"\xd0\xcf\x11\xe0"}),             # a legacy OLE object
    docx(extra={"customXml/run.js": b"WScript.Shell"}),
    odt(extra={"Basic/Standard/Module1.xml": b"<script/>"}),                         # StarBasic macros
], ids=["vba", "macro-enabled", "exe", "ole-object", "script", "odt-basic"])
def test_a_document_carrying_macros_or_an_executable_is_refused(content):
    assert refused_rule(content) == "office_package_macro"


def test_an_odt_whose_mimetype_is_not_stored_first_is_refused():
    shuffled = zip_of({"content.xml": "<x/>", "mimetype": b"application/vnd.oasis.opendocument.text",
                       "META-INF/manifest.xml": "<m/>"})
    assert refused_rule(shuffled) == "office_package_invalid"


def test_a_plain_zip_or_another_office_type_is_simply_not_an_accepted_type():
    assert inspect_package(zip_of({"photos/a.jpg": b"\xff\xd8\xff"})) is None
    xlsx_types = CONTENT_TYPES.replace("wordprocessingml.document.main+xml", "spreadsheetml.sheet.main+xml")
    assert inspect_package(docx(content_types=xlsx_types.format(extra=""))) is None


# -- through the API and the web workspace --------------------------------------------------------

@pytest.fixture
def dossier(sign_in):
    return submit(sign_in(APPLICANT), GARONNE)


def test_the_api_stores_a_real_docx_and_refuses_a_fake_one_and_a_bomb_storing_nothing(sign_in, dossier, uow_factory):
    applicant = sign_in(APPLICANT)
    ok = applicant.upload(dossier, "rib", "rib.docx", docx(), "application/octet-stream")
    assert ok.status_code == 201, ok.text
    assert ok.json()["document"]["content_type"] == DOCX
    before = counts(uow_factory)
    for content, rule in ((fake_docx(), "office_package_invalid"), (zip_bomb_docx(1024), "office_package_too_large"),
                          (docx(content_types=MACRO_MAIN), "office_package_macro")):
        r = applicant.upload(dossier, "rib", "rib.docx", content, DOCX)
        assert r.status_code == 422, r.text
        assert (r.json()["rule"], r.json()["field"]) == (rule, "file")
        assert r.headers["content-type"].startswith("application/problem+json")
    assert counts(uow_factory) == before


def test_the_web_workspace_refuses_a_fake_docx_naming_the_rule(uow_factory, monkeypatch):
    from web_support import PASSWORD, SECRET, World, seed_users, use_fast_passwords

    from web.app import create_standalone_app

    use_fast_passwords(monkeypatch)
    world = World(uow_factory)
    seed_users(uow_factory, world.clock)
    did = world.dossier("diagnostic")
    client = TestClient(create_standalone_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET),
                        follow_redirects=False)
    login = client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    client.post("/ui/login", data={"username": "cabinet.midi", "password": PASSWORD, "csrf_token": token, "next": ""})
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(f"/ui/dossiers/{did}").text).group(1)
    r = client.post(f"/ui/dossiers/{did}/documents", data={"csrf_token": token, "kind": "diagnostic_report"},
                    files={"file": ("rapport.docx", fake_docx(), DOCX)})
    assert r.status_code == 422  # the page again, the refusal beside the upload form
    alert = re.search(r'id="upload-error"[^>]*>([^<]*)<', r.text).group(1)
    assert "règle « document bureautique invalide »" in alert and "ce n&#39;est pas un document Word valide" in alert
    assert "office_package_invalid" not in alert  # plain French, no rule id
    with uow_factory() as uow:
        assert uow.session.scalars(select(m.Document).where(m.Document.dossier_id == did,
                                                            m.Document.kind == "diagnostic_report")).all() == []
