"""The administrative data of the letters (`programmes/letters.toml`): for each region its service
(name, postal address, e-mail, phone), the authority a recours gracieux goes to and the competent
tribunal administratif; for each programme what the administration's silence on a candidacy is
worth (CRPA L231-1 / L231-4) and after how many months. Validated at load; pure (no database)."""
from __future__ import annotations

import tomllib
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from rules.calendar import add_months

LETTERS_FILE = Path(__file__).parent / "letters.toml"


def _known(value: str | None) -> str | None:
    return None if value in (None, "", "unknown") else value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RegionService(_Frozen):
    service: str
    address: tuple[str, ...]
    email: str
    phone: str
    council: str
    tribunal: str
    tribunal_address: tuple[str, ...]


class ProgrammeSilence(_Frozen):
    silence: Literal["rejection", "acceptance"]
    silence_months: int
    silence_basis: str
    email: str | None = None


class LettersData(_Frozen):
    regions: dict[str, RegionService]
    programmes: dict[str, ProgrammeSilence]


@lru_cache(maxsize=4)
def letters_data(path: Path = LETTERS_FILE) -> LettersData:
    try:
        with open(path, "rb") as f:
            return LettersData.model_validate(tomllib.load(f))
    except (ValidationError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path.name} : {exc}") from None


def service_of(programme_id: str, region: str) -> dict:
    """What a letter of this programme prints of its service, its authority and its tribunal, and
    what silence on a candidacy is worth. Unknown items are None (the letter leaves them out).
    A programme or region missing from the file is an error, never a blank letter."""
    data = letters_data()
    try:
        r = data.regions[region]
    except KeyError:
        raise ValueError(f"letters.toml : aucune section [regions.\"{region}\"]") from None
    try:
        p = data.programmes[programme_id]
    except KeyError:
        raise ValueError(f"letters.toml : aucune section [programmes.{programme_id}]") from None
    return {"service": r.service, "address": list(r.address), "email": _known(p.email) or _known(r.email),
            "phone": _known(r.phone), "council": r.council, "tribunal": r.tribunal,
            "tribunal_address": list(r.tribunal_address), "silence": p.silence,
            "silence_months": p.silence_months, "silence_basis": p.silence_basis}


def implicit_decision_on(programme_id: str, received_on: date) -> date:
    """The day silence becomes a decision: `silence_months` after the day of receipt (CRPA
    L231-1 / L231-4; months counted as `rules.calendar.add_months`)."""
    return add_months(received_on, letters_data().programmes[programme_id].silence_months)


def missing_pieces(programme, provided: list[str] | set[str], received_on: date) -> dict:
    """The pieces of the candidacy the programme asks for that did not come with it, and the day
    by which to send them (CRPA L114-5, R112-5 3°): the programme's lapse delay after receipt,
    shifted to a working day as its reminders are. Empty when nothing is missing."""
    from rules.calendar import deadline

    missing = [k for k in programme.documents.candidacy if k not in set(provided)]
    if not missing:
        return {}
    until = deadline(received_on, programme.reminders.lapse_after_days,
                     shift_to_working_day=programme.reminders.shift_to_working_day)
    return {"missing": missing, "missing_until": until.isoformat()}
