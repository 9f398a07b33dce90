"""Documents through the API: a file goes in with its SHA-256 and comes back byte for byte; what
is too big, not of an allowed type (judged by content) or badly named is refused or made harmless."""
from __future__ import annotations

import hashlib
import io
import zipfile

import office_files
import pytest
from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import APPLICANT, CONSULTANT, GARONNE, OFFICER, PDF, counts, submit

from rules.errors import RuleViolation
from services.files import safe_filename, sniff

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40


def _zip(members: dict[str, bytes], stored_first: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        if stored_first:
            zf.writestr(zipfile.ZipInfo(stored_first), members.pop(stored_first), compress_type=zipfile.ZIP_STORED)
        for name, data in members.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


# Real minimal packages (a ZIP listing the names of a DOCX is no DOCX: tests/test_office_uploads.py).
ODT = office_files.odt()
DOCX = office_files.docx()


@pytest.fixture
def dossier(sign_in):
    return submit(sign_in(APPLICANT), GARONNE)


def test_an_uploaded_pdf_is_stored_with_its_sha256_and_downloaded_byte_for_byte(sign_in, dossier):
    applicant, officer = sign_in(APPLICANT), sign_in(OFFICER)
    r = applicant.upload(dossier, "kbis", "Extrait Kbis.pdf", PDF)
    assert r.status_code == 201
    doc = r.json()["document"]
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest() and doc["size"] == len(PDF)
    assert (doc["kind"], doc["version"], doc["content_type"], doc["filename"]) == ("kbis", 2, "application/pdf", "Extrait Kbis.pdf")
    assert r.headers["location"] == f"/dossiers/{dossier}/documents/{doc['id']}"
    download = officer.get(f"/dossiers/{dossier}/documents/{doc['id']}/content")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith('attachment; filename="Extrait Kbis.pdf"')
    assert download.headers["x-content-type-options"] == "nosniff"
    versions = [(d["kind"], d["version"]) for d in officer.get(f"/dossiers/{dossier}/documents").json() if d["kind"] == "kbis"]
    assert versions == [("kbis", 1), ("kbis", 2)]  # the placeholder of the candidacy is kept: nothing is overwritten


@pytest.mark.parametrize("content, content_type", [(PNG, "image/png"), (JPEG, "image/jpeg"), (ODT, "application/vnd.oasis.opendocument.text"),
                                                   (DOCX, "application/vnd.openxmlformats-officedocument.wordprocessingml.document")])
def test_each_allowed_type_is_recognised_by_its_content_whatever_its_name(sign_in, dossier, content, content_type):
    r = sign_in(APPLICANT).upload(dossier, "rib", "piece.bin", content, "application/octet-stream")
    assert r.status_code == 201, r.text
    assert r.json()["document"]["content_type"] == content_type
    assert not r.json()["document"]["filename"].endswith(".bin")


@pytest.mark.parametrize("name, content", [
    ("facture.pdf", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 100),    # a Windows .exe renamed .pdf
    ("script.pdf", b"#!/bin/sh\nrm -rf /\n"),
    ("archive.docx", _zip({"evil.exe": b"MZ" + b"\x00" * 50})),                 # a zip that is no document
    ("page.pdf", b"<html><script>alert(1)</script></html>"),
])
def test_a_file_whose_content_is_not_an_allowed_type_is_refused_whatever_its_name(sign_in, dossier, uow_factory, name, content):
    before = counts(uow_factory)
    r = sign_in(APPLICANT).upload(dossier, "rib", name, content)
    assert r.status_code == 415
    assert (r.json()["rule"], r.json()["field"]) == ("file_type", "file")
    assert counts(uow_factory) == before


def test_a_25_mb_upload_is_refused_and_nothing_is_stored(sign_in, dossier, uow_factory):
    before = counts(uow_factory)
    r = sign_in(APPLICANT).upload(dossier, "rib", "gros.pdf", PDF + b"0" * (25 * 1024 * 1024))
    assert r.status_code == 413 and r.json()["rule"] == "file_too_large"
    assert counts(uow_factory) == before
    # Refused from its Content-Length, with the very problem of the exact check below.
    inside = sign_in(APPLICANT).upload(dossier, "rib", "limite.pdf", PDF + b"0" * (20 * 1024 * 1024))
    fields = ("type", "title", "status", "detail", "rule", "field")
    assert [r.json()[k] for k in fields] == [inside.json()[k] for k in fields]
    assert r.json()["title"] == "Fichier trop volumineux" and "20 Mo au plus" in r.json()["detail"]
    # Sent in chunks (no Content-Length), cut as it streams in: the same problem again.
    head = (b'--XyZ\r\nContent-Disposition: form-data; name="kind"\r\n\r\nrib\r\n--XyZ\r\nContent-Disposition: '
            b'form-data; name="file"; filename="flux.pdf"\r\nContent-Type: application/pdf\r\n\r\n' + PDF)

    def chunks():
        yield head
        for _ in range(25):
            yield b"0" * (1024 * 1024)
        yield b"\r\n--XyZ--\r\n"

    applicant = sign_in(APPLICANT)
    streamed = applicant.client.post(f"/dossiers/{dossier}/documents", content=chunks(),
                                     headers={**applicant.headers, "Content-Type": "multipart/form-data; boundary=XyZ"})
    assert streamed.status_code == 413
    assert [streamed.json()[k] for k in fields] == [inside.json()[k] for k in fields]
    assert counts(uow_factory) == before


def test_a_file_of_just_over_20_mb_inside_the_envelope_is_refused_too(sign_in, dossier, uow_factory):
    before = counts(uow_factory)
    r = sign_in(APPLICANT).upload(dossier, "rib", "limite.pdf", PDF + b"0" * (20 * 1024 * 1024))
    assert r.status_code == 413
    assert counts(uow_factory) == before


@pytest.mark.parametrize("name, expected", [
    ("../../../../etc/passwd", "passwd.pdf"),
    ("..\\..\\Windows\\system32\\config.pdf", "config.pdf"),
    ("/var/lib/usine/documents/ab/cd.pdf", "cd.pdf"),
    ("..", "rib.pdf"),
    (".bashrc", "bashrc.pdf"),
    ("devis <final>.PDF", "devis _final_.pdf"),
])
def test_a_path_traversal_file_name_is_reduced_to_a_harmless_base_name(sign_in, dossier, name, expected):
    r = sign_in(APPLICANT).upload(dossier, "rib", name, PDF)
    assert r.status_code == 201
    stored = r.json()["document"]["filename"]
    assert stored == expected
    assert "/" not in stored and "\\" not in stored and not stored.startswith(".")


def test_names_and_types_are_judged_without_the_api():
    assert sniff(PDF) == "application/pdf" and sniff(b"MZ\x90") is None and sniff(b"PK\x03\x04broken") is None
    assert safe_filename("photo.jpeg", "image/jpeg", "x") == "photo.jpeg"
    assert safe_filename("photo.png", "image/jpeg", "x") == "photo.jpg"
    assert len(safe_filename("a" * 500 + ".pdf", "application/pdf", "x")) <= 120
    # A control or bidirectional format character is refused, not rewritten (rules.text).
    for raw in ("rapport\x00.exe\r\n.pdf", "\u202efdp.exe"):
        with pytest.raises(RuleViolation) as refused:
            safe_filename(raw, "application/pdf", "x")
        assert (refused.value.rule, refused.value.field) == ("text_forbidden_character", "filename")


def test_a_consultant_uploads_its_report_for_an_assigned_dossier_only(sign_in, clock, dossier):
    consultant = sign_in(CONSULTANT)
    assert consultant.upload(dossier, "diagnostic_report", "rapport.pdf", PDF).status_code == 404  # not assigned yet
    officer = sign_in(OFFICER)
    officer.ok(dossier, "take_for_review")
    officer.ok(dossier, "declare_eligible", {"consultant": "Cabinet Midi Conseil", "phase1": {"days": 5, "day_rate": "1100.00"}})
    assert consultant.upload(dossier, "diagnostic_report", "rapport.pdf", PDF).status_code == 201
    assert consultant.upload(dossier, "kbis", "kbis.pdf", PDF).status_code == 403
    assert officer.ok(dossier, "accept_diagnostic")["state"] == "action_plan"


def test_an_upload_with_a_stale_version_or_a_retried_key_stores_once(sign_in, dossier, uow_factory):
    applicant = sign_in(APPLICANT)
    version = applicant.get(f"/dossiers/{dossier}").json()["version"]
    stale = applicant.upload(dossier, "rib", "rib.pdf", PDF, headers={"If-Match": f'"{version + 5}"'})
    assert stale.status_code == 409 and stale.json()["current_version"] == version
    key = {"Idempotency-Key": "rib-2021"}
    first = applicant.upload(dossier, "rib", "rib.pdf", PDF, headers=key)
    documents = counts(uow_factory)["documents"]
    again = applicant.upload(dossier, "rib", "rib.pdf", PDF, headers=key)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert counts(uow_factory)["documents"] == documents


def test_a_document_of_another_dossier_is_not_found(sign_in, dossier):
    other = submit(sign_in(APPLICANT), GARONNE)
    doc = sign_in(APPLICANT).get(f"/dossiers/{other}/documents").json()[0]["id"]
    assert sign_in(OFFICER).get(f"/dossiers/{dossier}/documents/{doc}").status_code == 404
    assert sign_in(OFFICER).get(f"/dossiers/{other}/documents/{doc}").status_code == 200
