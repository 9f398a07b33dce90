"""Programme versions are recorded in the database as loaded (content and hash), so that a
dossier's programme version can be read back exactly as it was, even after the file changes."""
from __future__ import annotations

from sqlalchemy import select

from db import models as m
from services.uow import UnitOfWork


def sync_programmes(*, uow: UnitOfWork, clock) -> list[str]:
    """Insert the programme versions not yet recorded; refuse a known version whose file changed."""
    added = []
    for p in uow.catalogue.all():
        row = uow.session.scalar(select(m.ProgrammeVersion).where(
            m.ProgrammeVersion.programme_id == p.id, m.ProgrammeVersion.version == p.version))
        if row is None:
            uow.session.add(m.ProgrammeVersion(programme_id=p.id, version=p.version, name=p.name, region=p.region,
                                               content_hash=p.content_hash, content=p.model_dump(mode="json"),
                                               loaded_at=clock.now()))
            added.append(p.key)
        elif row.content_hash != p.content_hash:
            raise ValueError(f"« {p.name} » (version {p.version}) : le fichier a changé depuis son enregistrement ; une modification "
                             f"de programme est une nouvelle version (version = {p.version + 1}).")
    uow.commit()
    return added
