"""Messages of a dossier, private annotations and expert opinions (services.messages), through
the real services on the suite's database: who may write, what each side sees, the read marks,
the refusals that write nothing, the e-mail notices, and the audit that folds them harmlessly."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from db import models as m
from db import models_messages as mm
from rules.errors import InvalidInput, NotAllowed, RuleViolation
from services import messages
from services.audit.replay import replay_dossier
from services.audit.verify import verify_database, verify_dossier
from services.commands import Actor
from services.queries import history
from services.retention import export_person
from services.storage import MAX_UPLOAD_BYTES
from services.wording import describe
from tests.helpers import COMPANY, Life

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
KEY = messages.link_key("secret-de-test-" + "7" * 40)
LINK_BASE = "https://usine.example/ui/avis"


@pytest.fixture
def world(uow_factory, clock, actors):
    """A dossier in diagnostic, with its officer and its consultant."""
    actors = {**actors, "applicant": Actor("Mme Durand (Atelier Garonne)", "applicant", siren=COMPANY["siren"]),
              "consultant": Actor("Cabinet Midi Conseil", "consultant", consultant="Cabinet Midi Conseil")}
    life = Life(uow_factory, clock, actors)
    life.at("2021-02-01T10:00:00+01:00").submit()
    life.at("2021-02-03T09:00:00+01:00").do("take_for_review", "officer")
    life.at("2021-02-05T09:00:00+01:00").do("declare_eligible", "officer", consultant="Cabinet Midi Conseil",
                                            phase1={"days": 5, "day_rate": "1100.00"})
    life.at("2021-02-08T09:00:00+01:00")
    return life


def send(life, role, body, **kwargs):
    with life.uow_factory() as uow:
        return messages.send_message(uow=uow, clock=life.clock, actor=life.actors[role],
                                     dossier_id=life.dossier_id, body=body, **kwargs)


def counts(life):
    with life.uow_factory() as uow:
        s = uow.session
        return {model.__tablename__: s.scalar(select(func.count()).select_from(model))
                for model in (mm.DossierMessage, mm.MessageAttachment, mm.DossierAnnotation, mm.ExpertInvitation,
                              m.Event, m.Notification)} | {"version": uow.dossier(life.dossier_id).version}


def events_of(life):
    with life.uow_factory() as uow:
        return history(uow, life.dossier_id)


def test_the_officer_and_the_company_exchange_messages_each_an_event_and_a_mail_to_the_other_side(world):
    before = counts(world)
    send(world, "officer", "Bonjour, pouvez-vous préciser l'effectif du site de Toulouse ?", thread="applicant")
    world.clock.advance(minutes=5)
    out = send(world, "applicant", "Bonjour, 45 salariés dont 30 en production.",
               attachments=[messages.Attachment("effectif.pdf", PDF)])
    after = counts(world)
    assert after["dossier_messages"] == before["dossier_messages"] + 2
    assert after["events"] == before["events"] + 2 and after["version"] == before["version"] + 2
    sent = events_of(world)[-2:]
    assert [e["command"] for e in sent] == ["send_message", "send_message"]
    assert describe(sent[0]) == "Message de la Région à l'entreprise."
    assert describe(sent[1]) == "Message de l'entreprise à la Région avec une pièce jointe."
    assert sent[1]["data"]["attachments"][0]["sha256"] == out["attachments"][0]["sha256"]
    with world.uow_factory() as uow:
        mails = [(n.recipient_role, n.subject, n.body_text) for n in uow.session.scalars(
            select(m.Notification).where(m.Notification.kind == "message_received").order_by(m.Notification.id))]
        stored = uow.session.scalars(select(mm.MessageAttachment)).one()
        assert uow.storage.get(stored.storage_key) == PDF
    # The company is told at its contact address, the officer who instructs at the staff's.
    assert [role for role, _, _ in mails] == ["applicant", "officer"]
    assert "Nouveau message de la Région" in mails[0][1]
    assert "Nouveau message de l'entreprise" in mails[1][1] and "une pièce jointe" in mails[1][2]
    # The text of a message never travels by e-mail.
    assert all("45 salariés" not in text and "effectif" not in text for _, _, text in mails)


def test_each_side_sees_its_unread_messages_until_it_reads_them(world):
    send(world, "applicant", "Question sur le devis.")
    send(world, "consultant", "Rapport en préparation.")
    did = world.dossier_id
    with world.uow_factory() as uow:
        assert messages.unread_counts(uow.session, world.actors["officer"], [did]) == {did: 2}
        assert messages.unread_counts(uow.session, world.actors["applicant"], [did]) == {}
        # An auditor has nothing unread and its reading marks nothing.
        assert messages.unread_counts(uow.session, world.actors["auditor"], [did]) == {}
    with world.uow_factory() as uow:
        assert messages.mark_read(uow=uow, clock=world.clock, actor=world.actors["auditor"], dossier_id=did) == 0
    with world.uow_factory() as uow:
        assert messages.mark_read(uow=uow, clock=world.clock, actor=world.actors["officer"], dossier_id=did) == 2
    send(world, "officer", "Merci, nous revenons vers vous.", thread="applicant")
    with world.uow_factory() as uow:
        assert messages.unread_counts(uow.session, world.actors["officer"], [did]) == {}
        assert messages.unread_counts(uow.session, world.actors["applicant"], [did]) == {did: 1}
        assert messages.unread_counts(uow.session, world.actors["consultant"], [did]) == {}
        # The company reads its own exchange only: never the consultant's.
        seen = messages.messages_of(uow.session, world.actors["applicant"], did)
        assert [x["body"] for x in seen] == ["Question sur le devis.", "Merci, nous revenons vers vous."]


def test_a_message_over_the_size_limit_is_refused_naming_the_field_and_writes_nothing_not_even_the_file(world):
    before = counts(world)
    with world.uow_factory() as uow:
        files_before = dict(uow.storage.blobs)
    big = PDF + b"0" * (MAX_UPLOAD_BYTES + 1 - len(PDF))
    with pytest.raises(RuleViolation) as refused:
        send(world, "applicant", "Voici le rapport complet.", attachments=[messages.Attachment("rapport.pdf", big)])
    assert refused.value.rule == "file_too_large" and refused.value.field == "attachments"
    assert "« rapport.pdf » dépasse la taille maximale des fichiers (20 Mo au plus)" in refused.value.message
    assert counts(world) == before
    with world.uow_factory() as uow:
        assert uow.storage.blobs == files_before


@pytest.mark.parametrize("body, files, rule, field", [
    ("   ", [], "invalid_input", "body"),
    ("Voici le programme.", [messages.Attachment("setup.pdf", b"MZ\x90\x00binaire")], "file_type", "attachments"),
    ("Voici une pièce vide.", [messages.Attachment("vide.pdf", b"")], "invalid_input", "attachments"),
], ids=["empty message", "forbidden type", "empty attachment"])
def test_bad_messages_are_refused_by_their_rule_and_write_nothing(world, body, files, rule, field):
    before = counts(world)
    with pytest.raises(RuleViolation) as refused:
        send(world, "applicant", body, attachments=files)
    assert (refused.value.rule, refused.value.field) == (rule, field)
    assert counts(world) == before


def test_an_auditor_reads_only_and_each_outside_party_writes_in_its_own_exchange_of_its_own_dossier(world):
    before = counts(world)
    with pytest.raises(NotAllowed):
        send(world, "auditor", "Contrôle.", thread="applicant")
    with pytest.raises(NotAllowed):
        send(world, "applicant", "Au prestataire directement.", thread="consultant")
    world.actors["other"] = Actor("Autre entreprise", "applicant", siren="552100554")
    with pytest.raises(NotAllowed):
        send(world, "other", "Je lis le dossier d'un autre.")
    world.actors["elsewhere"] = Actor("Agent d'une autre région", "officer", regions=("Pays de la Loire",))
    with pytest.raises(NotAllowed):
        send(world, "elsewhere", "Bonjour.", thread="applicant")
    with pytest.raises(InvalidInput) as refused:
        send(world, "officer", "Sans destinataire.")
    assert refused.value.field == "thread"
    assert counts(world) == before


def test_annotations_are_for_the_agents_recorded_in_the_history_and_never_shown_outside(world):
    with world.uow_factory() as uow:
        messages.annotate(uow=uow, clock=world.clock, actor=world.actors["officer"], dossier_id=world.dossier_id,
                          body="Dirigeant à rappeler : doute sur la sous-traitance.")
    with pytest.raises(NotAllowed):
        with world.uow_factory() as uow:
            messages.annotate(uow=uow, clock=world.clock, actor=world.actors["applicant"],
                              dossier_id=world.dossier_id, body="Moi aussi.")
    send(world, "consultant", "Visite prévue le 12.")
    events = events_of(world)
    assert "annotate" in [e["command"] for e in events]
    for role in ("applicant", "consultant"):
        shown = messages.visible_events(events, world.actors[role])
        assert "annotate" not in [e["command"] for e in shown]
        with world.uow_factory() as uow:
            assert messages.annotations_of(uow.session, world.actors[role], world.dossier_id) == []
    company_view = messages.visible_events(events, world.actors["applicant"])
    assert not [e for e in company_view if e["command"] == "send_message"]  # the consultant's exchange
    with world.uow_factory() as uow:
        assert [a.body for a in messages.annotations_of(uow.session, world.actors["auditor"], world.dossier_id)] \
            == ["Dirigeant à rappeler : doute sur la sous-traitance."]
        # The company's right-of-access export: none of the agents' notes.
        export = export_person(uow.session, COMPANY.get("email") or "contact@atelier-garonne.example.fr",
                               names=("Mme Durand (Atelier Garonne)",))
    assert "sous-traitance" not in repr(export) and "annotate" not in repr(export)
    # What the company's person wrote is in it (RGPD art. 15), not what the consultant wrote.
    send(world, "applicant", "Nous confirmons la visite.")
    with world.uow_factory() as uow:
        export = export_person(uow.session, "contact@atelier-garonne.example.fr",
                               names=("Mme Durand (Atelier Garonne)",))
    assert [x["body"] for x in export["messages"]] == ["Nous confirmons la visite."]


def test_a_dossier_holding_messages_annotations_and_an_opinion_still_verifies_and_replays(world, uow_factory):
    send(world, "officer", "Question.", thread="applicant")
    send(world, "applicant", "Réponse.", attachments=[messages.Attachment("a.pdf", PDF)])
    with world.uow_factory() as uow:
        messages.annotate(uow=uow, clock=world.clock, actor=world.actors["officer"], dossier_id=world.dossier_id,
                          body="Note.")
    with world.uow_factory() as uow:
        link = messages.invite_expert(uow=uow, clock=world.clock, actor=world.actors["officer"],
                                      dossier_id=world.dossier_id, name="Dr Bernard", email="bernard@expert.example",
                                      key=KEY, link_base=LINK_BASE)["link"]
    with world.uow_factory() as uow:
        messages.give_opinion(uow=uow, clock=world.clock, key=KEY, token=link.rsplit("/", 1)[1],
                              opinion="reserved", text="Projet solide, coûts à revoir.")
    with world.uow_factory() as uow:
        assert verify_dossier(uow.session, world.dossier_id).ok
        replay = replay_dossier(uow.session, world.dossier_id)
        assert replay.ok, replay.discrepancies
        assert replay.state["status"] == uow.dossier(world.dossier_id).status == "diagnostic"
    assert verify_database(uow_factory.engine).ok
    for e in events_of(world):
        assert describe(e) != e["command"] and "None" not in describe(e)


def test_an_expert_gives_an_opinion_once_through_the_signed_link_received_by_mail(world):
    with world.uow_factory() as uow:
        # The candidacy's pieces include the RIB and the tax and social certificates.
        filed = set(uow.session.scalars(select(m.Document.kind).where(m.Document.dossier_id == world.dossier_id)))
    assert set(messages.HIDDEN_FROM_EXPERT) <= filed
    with world.uow_factory() as uow:
        out = messages.invite_expert(uow=uow, clock=world.clock, actor=world.actors["officer"],
                                     dossier_id=world.dossier_id, name="Dr Bernard", email="bernard@expert.example",
                                     key=KEY, link_base=LINK_BASE)
    # The link expires 15 days after the invitation, by the service clock (the default delay).
    assert out["expires_at"] == world.clock.now() + timedelta(days=15)
    with world.uow_factory() as uow:
        mail = uow.session.scalars(select(m.Notification).where(m.Notification.kind == "expert_invitation")).one()
        assert mail.recipient_address == "bernard@expert.example" and out["link"] in mail.body_text
    token = out["link"].rsplit("/", 1)[1]
    with world.uow_factory() as uow:
        summary = messages.expert_summary(uow=uow, clock=world.clock, key=KEY, token=token)
    assert summary["company"] == COMPANY["name"]
    assert all(kind not in messages.HIDDEN_FROM_EXPERT for kind, _ in summary["documents"])
    with world.uow_factory() as uow:
        messages.give_opinion(uow=uow, clock=world.clock, key=KEY, token=token, opinion="favourable",
                              text="Diagnostic pertinent.")
    last = events_of(world)[-1]
    assert last["command"] == "give_opinion" and last["actor"] == "Dr Bernard"
    assert describe(last) == "Avis favorable rendu (expert extérieur)."
    before = counts(world)
    with pytest.raises(RuleViolation) as refused, world.uow_factory() as uow:
        messages.give_opinion(uow=uow, clock=world.clock, key=KEY, token=token, opinion="unfavourable",
                              text="Je change d'avis.")
    assert refused.value.rule == "link_used"
    assert counts(world) == before


def test_an_expired_or_tampered_link_is_refused_and_writes_nothing(world):
    with world.uow_factory() as uow:
        token = messages.invite_expert(uow=uow, clock=world.clock, actor=world.actors["officer"],
                                       dossier_id=world.dossier_id, name="Mme Expert", email="expert@example.fr",
                                       key=KEY, link_base=LINK_BASE, days=15)["link"].rsplit("/", 1)[1]
    before = counts(world)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad, rule in ((tampered, "link_invalid"), (token, "link_expired")):
        if rule == "link_expired":
            world.clock.advance(days=15)
        with pytest.raises(RuleViolation) as refused, world.uow_factory() as uow:
            messages.give_opinion(uow=uow, clock=world.clock, key=KEY, token=bad, opinion="favourable", text="Oui.")
        assert refused.value.rule == rule
    assert "expiré le 23/02/2021 09:00" in refused.value.message
    # A link signed with another key is as good as tampered.
    with pytest.raises(RuleViolation) as refused, world.uow_factory() as uow:
        messages.expert_summary(uow=uow, clock=world.clock, key=messages.link_key("autre"), token=token)
    assert refused.value.rule == "link_invalid"
    assert counts(world) == before


def test_only_an_officer_or_a_head_invites_an_expert_at_a_valid_address(world):
    before = counts(world)
    with pytest.raises(NotAllowed), world.uow_factory() as uow:
        messages.invite_expert(uow=uow, clock=world.clock, actor=world.actors["applicant"],
                               dossier_id=world.dossier_id, name="Ami", email="ami@example.fr", key=KEY,
                               link_base=LINK_BASE)
    with pytest.raises(InvalidInput) as refused, world.uow_factory() as uow:
        messages.invite_expert(uow=uow, clock=world.clock, actor=world.actors["officer"],
                               dossier_id=world.dossier_id, name="Dr Bernard", email="pas-une-adresse", key=KEY,
                               link_base=LINK_BASE)
    assert refused.value.field == "expert_email"
    assert counts(world) == before


def test_past_its_retention_a_dossier_s_messages_lose_their_texts_and_files_and_the_history_still_verifies(world):
    from services.retention import ANONYMISED_BODY, run_retention

    send(world, "officer", "Votre dirigeant, M. Durand, peut-il nous rappeler ?", thread="applicant")
    send(world, "applicant", "Oui, au 06 12 34 56 78.", attachments=[messages.Attachment("cni-durand.pdf", PDF)])
    with world.uow_factory() as uow:
        messages.annotate(uow=uow, clock=world.clock, actor=world.actors["officer"], dossier_id=world.dossier_id,
                          body="M. Durand semble pressé.")
    world.do("withdraw", "applicant", reason="Projet reporté.")
    world.clock.advance(days=365 * 11)
    report = run_retention(world.uow_factory, world.clock)
    assert [d["reference"] for d in report.anonymised] == [world.dossier().reference]
    assert report.anonymised[0]["counts"]["messages"] == 3
    with world.uow_factory() as uow:
        s = uow.session
        assert {x.body for x in s.scalars(select(mm.DossierMessage))} == {ANONYMISED_BODY}
        assert {x.body for x in s.scalars(select(mm.DossierAnnotation))} == {ANONYMISED_BODY}
        piece = s.scalars(select(mm.MessageAttachment)).one()
        assert "durand" not in piece.filename and piece.content_deleted_at is not None
        assert not uow.storage.exists(piece.storage_key)
        assert verify_dossier(s, world.dossier_id).ok
