"""Test helpers: play a dossier's life through the real services."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from db import models as m
from services import commands

# The scenario files are data of the repository (golden, audited, pathways): never read from outside it.
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

COMPANY = {"siren": "732829320", "name": "Atelier Garonne SAS", "employees": 45, "equity": "200000.00",
           "region": "Occitanie", "first_fy_months": 24, "in_difficulty": False, "tax_social_up_to_date": True,
           "activity": "industrial"}


class Life:
    """Runs commands on one dossier, each in its own unit of work, at the instants given."""

    def __init__(self, uow_factory, clock, actors):
        self.uow_factory, self.clock, self.actors = uow_factory, clock, actors
        self.dossier_id = None

    def at(self, iso: str) -> "Life":
        self.clock.set(datetime.fromisoformat(iso))
        return self

    def do(self, name: str, role: str, **kwargs):
        fn = getattr(commands, name)
        with self.uow_factory() as uow:
            if self.dossier_id is not None and "dossier_id" not in kwargs and name not in ("submit_candidacy", "start_candidacy"):
                kwargs["dossier_id"] = self.dossier_id
            out = fn(uow=uow, clock=self.clock, actor=self.actors[role], **kwargs)
        if name in ("submit_candidacy", "start_candidacy") and self.dossier_id is None:
            self.dossier_id = out.dossier_id
        return out

    def dossier(self):
        """A detached snapshot of the dossier as committed."""
        with self.uow_factory() as uow:
            d = uow.dossier(self.dossier_id)
            uow.session.expunge(d)
            return d

    def submit(self, company=None, **kwargs):
        return self.do("submit_candidacy", "applicant", programme_id="occitanie-prif",
                       company=company or COMPANY, **kwargs)

    def to_approved(self, *, phase1=("5", "1100.00"), phase2=("20", "1300.00"), company=None, prior=None):
        self.at("2021-02-01T10:00:00+01:00").submit(company, de_minimis_prior=prior or [])
        self.at("2021-02-03T09:00:00+01:00").do("take_for_review", "officer")
        self.at("2021-02-05T09:00:00+01:00").do("declare_eligible", "officer", consultant="Cabinet Midi Conseil",
                                                phase1={"days": int(phase1[0]), "day_rate": phase1[1]})
        self.at("2021-03-12T09:00:00+01:00").do("provide_documents", "consultant", kinds=["diagnostic_report"])
        self.at("2021-03-15T09:00:00+01:00").do("accept_diagnostic", "officer")
        self.at("2021-03-20T09:00:00+01:00").do("provide_documents", "applicant", kinds=["action_plan", "phase2_quote"])
        self.at("2021-03-20T10:00:00+01:00").do("submit_action_plan", "applicant",
                                                phase2={"days": int(phase2[0]), "day_rate": phase2[1]})
        self.at("2021-03-25T09:00:00+01:00").do("propose_for_vote", "officer", session="CP-2021-04")
        self.at("2021-04-09T14:00:00+02:00").do("record_vote", "head", session="CP-2021-04", outcome="approved",
                                                deliberation="CP/2021-04/17")
        return self


def row_counts(uow_factory) -> dict[str, int]:
    """Rows per table: what a refused command must leave unchanged."""
    out = {}
    with uow_factory() as uow:
        for model in (m.Company, m.Dossier, m.Document, m.DocumentRequest, m.DeMinimisAid, m.PaymentClaim,
                      m.Payment, m.RecoveryOrder, m.Notification, m.Event, m.CouncilSession):
            out[model.__tablename__] = uow.session.scalar(select(func.count()).select_from(model))
        out["dossier_versions"] = tuple(uow.session.scalars(select(m.Dossier.version).order_by(m.Dossier.id)))
        out["states"] = tuple(uow.session.scalars(select(m.Dossier.status).order_by(m.Dossier.id)))
    return out


def stop_with_ctrl_c(process, log=None, timeout: float = 120) -> int | None:
    """Stop a `usine serve` started in its own process group as a user would (Ctrl-C), killing the
    group if it does not stop in time; closes its log. The exit code, or None when it was killed."""
    import os
    import signal
    import subprocess

    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        code = None
    if log is not None:
        log.close()
    return code
