"""The API listing pages by cursor in every sort, agreeing with offsets (docs/performance.md)."""
from __future__ import annotations

import pytest
from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import APPLICANT, OFFICER, at, submit
from web_support import GARONNE


@pytest.fixture
def eight(sign_in, clock):
    clock.set(at("2021-03-01T10:00:00+01:00"))
    applicant, officer = sign_in(APPLICANT), sign_in(OFFICER)
    ids = [submit(applicant, {**GARONNE, "name": f"Atelier {i}"}) for i in range(8)]
    for did in ids[:5]:
        officer.ok(did, "take_for_review")
    return ids


def test_the_api_listing_pages_by_cursor_in_every_sort_and_agrees_with_offsets(eight, sign_in):
    officer = sign_in(OFFICER)
    for sort in ("-updated_at", "submitted_at", "reference", "-aid_total", "company", "id"):
        everything = officer.get("/dossiers", params={"sort": sort, "limit": 200}).json()
        assert everything["total"] == 8 and not everything["total_capped"]
        expected = [x["id"] for x in everything["items"]]
        walked, cursor, pages = [], None, []
        while True:
            params = {"sort": sort, "limit": 3, **({"cursor": cursor} if cursor else {})}
            page = officer.get("/dossiers", params=params).json()
            pages.append(page)
            walked += [x["id"] for x in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert walked == expected, sort
        assert walked[3:6] == [x["id"] for x in officer.get("/dossiers", params={"sort": sort, "limit": 3,
                                                                                  "offset": 3}).json()["items"]]
        before = officer.get("/dossiers", params={"sort": sort, "limit": 3, "cursor": pages[-1]["prev_cursor"]}).json()
        assert [x["id"] for x in before["items"]] == expected[3:6], sort
    other_sort = officer.get("/dossiers", params={"sort": "id", "limit": 3}).json()["next_cursor"]
    refused = officer.get("/dossiers", params={"sort": "reference", "cursor": other_sort})
    assert refused.status_code == 422 and "cursor" in refused.text


