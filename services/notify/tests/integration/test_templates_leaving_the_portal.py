"""Every message text, from the one Jinja2 catalogue: what leaves the portal and the in-app inbox items, rendered
for seeded events full of personal data, carry none of it (in-app items may name the town's staff on a case,
ADR 0008); towns' own templates (in-app ones too), locales and previews."""

from __future__ import annotations

import dataclasses

import pytest
from minorprot.referral.v1 import events_pb2 as referral_events
from minorprot.reporting.v1 import events_pb2 as reporting_events
from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.auth import Role, workload_principal
from platform_runtime.db import Database
from platform_runtime.tenancy import acting_as
from services.notify.adapters.orm import DeliveryRecord, NotificationRecord, detached
from services.notify.domain import outbound
from services.notify.service_layer.directory import DirectoryService
from services.notify.service_layer.receipts import ReceiptService
from services.notify.service_layer.town_templates import TemplateService
from services.notify.tests.integration.builders import (
    OTHER_TENANT,
    PILOT_TENANT,
    caller,
    case_assigned,
    case_status_changed,
    crisis_declared,
    deadline_breached,
    referral_opened,
    visit_overdue,
)
from tests.support.events import message

pytestmark = pytest.mark.integration

ADMIN = caller(Role.TOWN_ADMIN, user="admin1")
IDENTITY_NUMBER = "11010120150307002X"
DIAGNOSIS = "重度抑郁症"
FAMILY = "父亲服刑、母亲离家"
REPORTER = "报告人张老师"
CHILD_NAME = "李小明"
REPORTER_PHONE = "13912345678"
RECEIPT = "R-T242F2X-Q4KERV3-R7HPCPW"
FORBIDDEN_IN_APP = (IDENTITY_NUMBER, DIAGNOSIS, FAMILY, REPORTER, CHILD_NAME, "监护落实")
FORBIDDEN = (*FORBIDDEN_IN_APP, "王专人", "李社工", "张儿童主任")


def narrative(kind: str) -> str:
    return f"{kind}:{CHILD_NAME}({IDENTITY_NUMBER}),{DIAGNOSIS},{FAMILY},{REPORTER}"


def seeded_events() -> list:  # type: ignore[type-arg]
    crisis = crisis_declared("report9")
    crisis = dataclasses.replace(
        crisis,
        payload=reporting_events.CrisisDeclared(
            report_id="report9",
            reasons=[narrative("原因")],
            situation_types=[narrative("情形")],
            required_actions=["notify_police"],
            division_code="110111008001",
        ),
    )
    referral = referral_opened("referral1", urgent=True)
    referral.payload.referral.reason = narrative("转介理由")  # type: ignore[attr-defined]
    sent = dataclasses.replace(referral, payload=referral_events.ReferralSent(referral=referral.payload.referral))  # type: ignore[attr-defined]
    assigned = case_assigned("child2")
    assigned.payload.social_worker_user_id = "cw1"  # type: ignore[attr-defined]
    return [
        crisis,
        deadline_breached("report9", crisis=True),
        deadline_breached("report8"),
        referral,
        sent,
        visit_overdue("child1", responsible_user_id="cw1"),
        case_status_changed("child1", "monitoring", "closed", responsible_user_id="cw1"),
        assigned,
    ]


@pytest.fixture
def people(database: Database) -> None:
    directory = DirectoryService(database)
    with acting_as(caller(Role.CASEWORKER, user="cw1")):
        directory.update_my_contact(
            phone="13800000001", email="cw1@town.example", channels_off=[], quiet_from="", quiet_until=""
        )
    with acting_as(ADMIN):
        directory.update_my_contact(
            phone="13800000002", email="a@town.example", channels_off=[], quiet_from="", quiet_until="", locale="en"
        )
        for channel, address in (
            ("email", "duty@edu.example"),
            ("sms", "13800000009"),
            ("webhook", "http://127.0.0.1:9/hook"),
        ):
            directory.set_agency_contact("education", channel, address)


def outgoing(database: Database, tenant: str = PILOT_TENANT) -> list[DeliveryRecord]:
    with database.unit_of_work(tenant) as uow:
        return detached(uow, uow.session.scalars(select(DeliveryRecord).where(DeliveryRecord.channel != "in_app")))


def test_no_message_leaving_the_portal_carries_personal_data(consumer, database, service, people):
    for number, event in enumerate(seeded_events()):
        consumer.process(message(event, f"event{number}"))
    with acting_as(workload_principal("reporting", PILOT_TENANT)):  # a reporter's receipt, as reporting asks
        ReceiptService(database, service).send_receipt("report9", RECEIPT, "sms", REPORTER_PHONE, "zh-CN")
    sent = outgoing(database)
    kinds = {row.event_type for row in sent}
    assert kinds >= {
        "crisis_declared",
        "crisis_deadline_breached",
        "referral_sent",
        "visit_overdue",
        "case_status_changed",
        "case_assigned",
        outbound.RECEIPT,
    }
    assert {row.channel for row in sent} == {"email", "sms", "webhook"}
    for row in sent:
        for forbidden in FORBIDDEN:
            assert forbidden not in row.title + row.text, (row.event_type, row.channel, forbidden)
        if row.event_type == outbound.RECEIPT:
            # The reporter is told their number and the public lookup page: not the town, not their own number.
            assert RECEIPT in row.text and "/public/receipt" in row.text
            assert PILOT_TENANT not in row.title + row.text and REPORTER_PHONE not in row.title + row.text
        else:
            assert "/notifications/about/" in row.text
    english = [row for row in sent if row.recipient == "user:admin1"]
    assert english and all(row.text.startswith("Child protection") for row in english)

    with database.unit_of_work(PILOT_TENANT) as uow:
        inbox = detached(uow, uow.session.scalars(select(NotificationRecord)))
    assert {row.subject_type for row in inbox} == {"report", "referral", "child"}
    for row in inbox:
        for forbidden in FORBIDDEN_IN_APP:
            assert forbidden not in row.title + row.body, (row.title, forbidden)


@pytest.mark.parametrize(("event_type", "locale"), sorted(outbound.DEFAULTS))
def test_every_template_renders_with_sample_data_and_only_its_variables(event_type, locale):
    subject, text = outbound.DEFAULTS[(event_type, locale)]
    rendered = outbound.render(subject, text, outbound.sample_facts(event_type))
    assert rendered.subject and "{" not in rendered.subject + rendered.text
    if not event_type.startswith(outbound.INBOX):  # an inbox item is in the portal already
        assert outbound.sample_facts(event_type)["link"] in rendered.text


def test_every_event_type_has_its_inbox_text_in_both_languages():
    outgoing = {event_type for event_type, _ in outbound.DEFAULTS if not event_type.startswith(outbound.INBOX)}
    outgoing.remove(outbound.RECEIPT)  # to a reporter, who has no inbox
    for event_type in outgoing:
        for locale in outbound.LOCALES:
            assert (outbound.INBOX + event_type, locale) in outbound.DEFAULTS


def test_a_persons_own_inbox_item_is_in_their_language(consumer, database, service, people):
    consumer.process(message(visit_overdue("child1", responsible_user_id="admin1"), "event1"))
    consumer.process(message(visit_overdue("child2", responsible_user_id="cw1"), "event2"))
    with database.unit_of_work(PILOT_TENANT) as uow:
        titles = {row.recipient_user: row.title for row in uow.session.scalars(select(NotificationRecord))}
    assert titles["admin1"].startswith("Follow-up visit overdue")  # the administrator reads English
    assert titles["cw1"].startswith("随访逾期 Follow-up visit overdue")


def test_a_town_words_its_own_inbox_items(consumer, database, service):
    templates = TemplateService(database)
    with acting_as(ADMIN):
        preview = templates.preview("inbox.crisis_declared", "zh-CN", "良乡危机:{{ actions }}", "报告 {{ report_id }}")
        assert preview.subject.startswith("良乡危机:向公安机关报告") or preview.subject.startswith("良乡危机:立即")
        templates.set_template("inbox.crisis_declared", "zh-CN", "良乡危机:{{ actions }}", "报告 {{ report_id }}")
    consumer.process(message(crisis_declared("report9"), "event1"))
    with acting_as(caller(Role.CASEWORKER)):
        (item,) = [n for n in service.list_inbox() if n.subject_id == "report9"]
    assert item.title.startswith("良乡危机:") and item.body == "报告 report9"


def test_a_town_writes_its_own_template_and_previews_it(consumer, database, people):
    templates = TemplateService(database)
    with acting_as(ADMIN):
        preview = templates.preview("crisis_declared", "zh-CN", "急:{{ actions }}", "请处置 {{ link }} 回复{{ code }}")
        assert preview.subject == "急:立即通知乡镇(街道)值班人员、向公安机关报告"
        saved = templates.set_template("crisis_declared", "zh-CN", "良乡急报", "良乡:{{ actions }} {{ link }}")
        assert saved.overridden
        assert templates.preview("crisis_declared", "zh-CN").subject == "良乡急报"
    consumer.process(message(crisis_declared("report9"), "event1"))
    (mine,) = [row for row in outgoing(database) if row.recipient == "user:cw1" and row.channel == "sms"]
    assert mine.title == "良乡急报" and mine.text.startswith("良乡:")
    # The other town keeps the district's.
    with acting_as(caller(Role.TOWN_ADMIN, tenant=OTHER_TENANT)):
        theirs = {(t.event_type, t.locale): t for t in templates.list_templates()}
    assert not theirs[("crisis_declared", "zh-CN")].overridden


@pytest.mark.parametrize(
    ("subject", "text"),
    [
        ("{{ child_name }}", "{{ link }}"),  # not a variable a template is given
        ("ok", "{{ link.__class__.__mro__ }}"),  # the sandbox refuses
        ("ok", "{% for x in %}"),  # does not parse
        ("", "text without a subject"),
    ],
)
def test_a_towns_template_that_cannot_render_is_refused(database, subject, text):
    with acting_as(ADMIN), pytest.raises(errors.InvalidInput):
        TemplateService(database).set_template("crisis_declared", "zh-CN", subject, text)


def test_only_the_town_admin_changes_templates(database):
    with acting_as(caller(Role.CASEWORKER)), pytest.raises(errors.PermissionDenied):
        TemplateService(database).set_template("crisis_declared", "zh-CN", "x", "{{ link }}")
