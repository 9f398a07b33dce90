"""Auditor tools (SPEC §8): verification of the hash-chained history and of the anchors, replay
of a dossier at any instant with rule re-computation, JSON/PDF/zip exports.

    verify.verify_database(engine)            every chain, every dossier, every anchored head
    verify.verify_dossier(session, id)        one dossier's chain against its row
    replay.replay_dossier(session, id, at=…)  the dossier rebuilt from its events alone
    replay.stored_state / replay.diff         the same shape read from the tables, compared
    replay.audit_replay(session, id, at=…, compare=…)  an auditor's request: refuses an instant
                                              before the first event and a diff with a past instant
    anchors.anchor(uow_factory, clock)        record every dossier's chain head (daily flow)
    export.export_dossier / pdf.render_pdf / export.export_programme
    wording.fr_day / fr_instant / describe    what people read: French dates, French event readings
"""
