"""The notify service over real loopback gRPC, with signed tokens."""

import base64

import grpc
import pytest
from minorprot.common.v1 import common_pb2
from minorprot.notify.v1 import notify_pb2

from platform_runtime.auth import Role
from services.notify.adapters.channels import agency_key
from services.notify.tests.integration.builders import OTHER_TENANT, PILOT_TENANT, referral_opened
from services.notify.tests.integration.conftest import WEBHOOK_KEY
from tests.support.events import message

pytestmark = pytest.mark.integration


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def test_a_caseworker_reads_and_marks_the_inbox(stub, consumer, secrets):
    consumer.process(message(referral_opened("referral1", urgent=True), "event1"))
    caseworker = auth(secrets.token(role=Role.CASEWORKER))

    (notification,) = stub.ListInbox(notify_pb2.ListInboxRequest(), metadata=caseworker).notifications
    assert notification.title == "新转介 New referral to 区教委"
    assert notification.priority == notify_pb2.PRIORITY_URGENT
    assert not notification.HasField("read_at")

    marked = stub.MarkRead(
        notify_pb2.MarkReadRequest(notification_id=notification.notification_id), metadata=caseworker
    )
    assert marked.notification.HasField("read_at")
    assert stub.ListInbox(notify_pb2.ListInboxRequest(unread_only=True), metadata=caseworker).notifications == []


def test_the_wrong_callers_are_denied(stub, consumer, secrets):
    consumer.process(message(referral_opened("referral1"), "event1"))
    caseworker = auth(secrets.token(role=Role.CASEWORKER))
    (notification,) = stub.ListInbox(notify_pb2.ListInboxRequest(), metadata=caseworker).notifications

    with pytest.raises(grpc.RpcError) as denied:
        stub.MarkRead(
            notify_pb2.MarkReadRequest(notification_id=notification.notification_id),
            metadata=auth(secrets.token(role=Role.TOWN_ADMIN)),
        )
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as denied:
        stub.ListInbox(notify_pb2.ListInboxRequest(), metadata=auth(secrets.token(role=Role.PUBLIC)))
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer not-a-token"),)])
def test_a_caller_without_a_valid_token_is_unauthenticated(stub, metadata):
    with pytest.raises(grpc.RpcError) as refused:
        stub.ListInbox(notify_pb2.ListInboxRequest(), metadata=metadata)
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_people_keep_their_contact_details_and_the_town_admin_edits_rota_and_subscriptions(stub, secrets):
    caseworker = auth(secrets.token(role=Role.CASEWORKER, user="cw1"))
    admin = auth(secrets.token(role=Role.TOWN_ADMIN, user="admin1"))
    contact = notify_pb2.Contact(phone="13800000001", email="cw1@town.example", channels_off=["email"])
    saved = stub.UpdateMyContact(notify_pb2.UpdateMyContactRequest(contact=contact), metadata=caseworker).contact
    assert (saved.user_id, saved.role, list(saved.channels_off)) == ("cw1", "caseworker", ["email"])
    assert stub.GetMyContact(notify_pb2.GetMyContactRequest(), metadata=caseworker).contact.phone == "13800000001"

    day = common_pb2.Date(year=2026, month=12, day=5)
    set_day = stub.SetDutyOfficer(notify_pb2.SetDutyOfficerRequest(date=day, user_id="cw1"), metadata=admin).day
    assert (set_day.user_id, set_day.display_name) == ("cw1", "cw1")
    people = stub.ListContacts(notify_pb2.ListContactsRequest(), metadata=admin).contacts
    assert [(p.user_id, p.role) for p in people] == [("cw1", "caseworker")]
    rota = stub.ListDutyRota(notify_pb2.ListDutyRotaRequest(from_date=day, days=2), metadata=caseworker).days
    assert [d.user_id for d in rota] == ["cw1", ""]

    subscription = notify_pb2.Subscription(event_type="deadline_breached", recipient="duty_officer", channels=["sms"])
    found = stub.SetSubscription(notify_pb2.SetSubscriptionRequest(subscription=subscription), metadata=admin)
    mine = [s for s in found.subscriptions if s.event_type == "deadline_breached"]
    assert sorted((s.recipient, tuple(s.channels)) for s in mine) == [
        ("duty_officer", ("sms",)),
        ("role:caseworker", ("in_app",)),
    ]
    listed = stub.ListSubscriptions(notify_pb2.ListSubscriptionsRequest(), metadata=caseworker)
    assert "crisis_declared" in listed.event_types
    assert len(listed.subscriptions) == len(found.subscriptions)

    # Another town sees its own (the district's defaults), not this town's edit or rota.
    other = auth(secrets.token(tenant=OTHER_TENANT, role=Role.TOWN_ADMIN))
    theirs = stub.ListSubscriptions(notify_pb2.ListSubscriptionsRequest(), metadata=other).subscriptions
    assert not any(s.event_type == "deadline_breached" and s.recipient == "duty_officer" for s in theirs)
    assert (
        stub.ListDutyRota(notify_pb2.ListDutyRotaRequest(from_date=day, days=1), metadata=other).days[0].user_id == ""
    )


@pytest.mark.parametrize(
    ("call", "request_", "code"),
    [
        (
            "SetSubscription",
            notify_pb2.SetSubscriptionRequest(
                subscription=notify_pb2.Subscription(
                    event_type="crisis_declared", recipient="role:caseworker", channels=["sms"]
                )
            ),
            "PERMISSION_DENIED",
        ),
        (
            "SetDutyOfficer",
            notify_pb2.SetDutyOfficerRequest(date=common_pb2.Date(year=2026, month=12, day=5), user_id="x"),
            "PERMISSION_DENIED",
        ),
    ],
)
def test_a_caseworker_may_not_edit_the_towns_settings(stub, secrets, call, request_, code):
    with pytest.raises(grpc.RpcError) as denied:
        getattr(stub, call)(request_, metadata=auth(secrets.token(role=Role.CASEWORKER)))
    assert denied.value.code().name == code


@pytest.mark.parametrize(
    "request_",
    [
        notify_pb2.SetSubscriptionRequest(
            subscription=notify_pb2.Subscription(
                event_type="no_such_event", recipient="role:caseworker", channels=["sms"]
            )
        ),
        notify_pb2.SetSubscriptionRequest(
            subscription=notify_pb2.Subscription(
                event_type="crisis_declared", recipient="role:public", channels=["sms"]
            )
        ),
        notify_pb2.SetSubscriptionRequest(
            subscription=notify_pb2.Subscription(
                event_type="crisis_declared", recipient="duty_officer", channels=["pigeon"]
            )
        ),
        notify_pb2.SetDutyOfficerRequest(date=common_pb2.Date(year=2026, month=2, day=30), user_id="cw1"),
        notify_pb2.SetDutyOfficerRequest(date=common_pb2.Date(year=2026, month=2, day=3), user_id="nobody"),
        notify_pb2.SetAgencyContactRequest(
            contact=notify_pb2.AgencyContact(agency_code="police", channel="webhook", address="ftp://x")
        ),
        notify_pb2.SetAgencyContactRequest(
            contact=notify_pb2.AgencyContact(agency_code="police", channel="webhook", address="http://10.0.0.5/hook")
        ),
    ],
)
def test_bad_input_is_refused_field_by_field(stub, secrets, request_):
    admin = auth(secrets.token(role=Role.TOWN_ADMIN, user="admin1"))
    call = {
        notify_pb2.SetSubscriptionRequest: stub.SetSubscription,
        notify_pb2.SetDutyOfficerRequest: stub.SetDutyOfficer,
        notify_pb2.SetAgencyContactRequest: stub.SetAgencyContact,
    }[type(request_)]
    with pytest.raises(grpc.RpcError) as refused:
        call(request_, metadata=admin)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_templates_are_listed_previewed_and_overridden_over_grpc(stub, secrets):
    admin = auth(secrets.token(role=Role.TOWN_ADMIN, user="admin1"))
    listed = stub.ListTemplates(notify_pb2.ListTemplatesRequest(), metadata=admin).templates
    crisis = next(t for t in listed if (t.event_type, t.locale) == ("crisis_declared", "en"))
    assert "actions" in crisis.variables and not crisis.overridden
    preview = stub.PreviewTemplate(
        notify_pb2.PreviewTemplateRequest(event_type="crisis_declared", locale="en"), metadata=admin
    )
    assert preview.subject == "[URGENT] Crisis report: act now" and "Reply 482913" in preview.text
    saved = stub.SetTemplate(
        notify_pb2.SetTemplateRequest(
            template=notify_pb2.Template(event_type="case_assigned", locale="en", subject="Yours", text="{{ link }}")
        ),
        metadata=admin,
    ).template
    assert saved.overridden
    with pytest.raises(grpc.RpcError) as refused:
        stub.PreviewTemplate(notify_pb2.PreviewTemplateRequest(event_type="case_assigned", locale="fr"), metadata=admin)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_sms_replies_come_only_from_the_platform(stub, secrets):
    platform = auth(secrets.token(tenant="000000000", role=Role.SYSTEM, user="service:gateway"))
    reply = stub.ReceiveSmsReply(
        notify_pb2.ReceiveSmsReplyRequest(from_phone="13900000001", text="好 123456"), metadata=platform
    )
    assert reply.crisis_id == ""
    with pytest.raises(grpc.RpcError) as denied:
        stub.ReceiveSmsReply(
            notify_pb2.ReceiveSmsReplyRequest(from_phone="13900000001", text="123456"),
            metadata=auth(secrets.token(role=Role.TOWN_ADMIN)),
        )
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_the_town_admin_sets_the_towns_limit_for_acknowledging_crises(stub, secrets):
    admin = auth(secrets.token(role=Role.TOWN_ADMIN, user="admin1"))
    caseworker = auth(secrets.token(role=Role.CASEWORKER))
    default = stub.GetTownSettings(notify_pb2.GetTownSettingsRequest(), metadata=caseworker).settings
    assert (default.crisis_ack_minutes, default.default_crisis_ack_minutes) == (15, 15)
    request = notify_pb2.SetTownSettingsRequest(settings=notify_pb2.TownSettings(crisis_ack_minutes=10))
    assert stub.SetTownSettings(request, metadata=admin).settings.crisis_ack_minutes == 10
    other = auth(secrets.token(tenant=OTHER_TENANT, role=Role.CASEWORKER))
    assert stub.GetTownSettings(notify_pb2.GetTownSettingsRequest(), metadata=other).settings.crisis_ack_minutes == 15
    with pytest.raises(grpc.RpcError) as denied:
        stub.SetTownSettings(request, metadata=caseworker)
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    bad = notify_pb2.SetTownSettingsRequest(settings=notify_pb2.TownSettings(crisis_ack_minutes=-5))
    with pytest.raises(grpc.RpcError) as refused:
        stub.SetTownSettings(bad, metadata=admin)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_the_town_admin_is_shown_each_agencys_own_webhook_key(stub, secrets):
    admin = auth(secrets.token(role=Role.TOWN_ADMIN, user="admin1"))
    for channel, address in (("webhook", "https://edu.example/hooks"), ("email", "duty@edu.example")):
        contact = notify_pb2.AgencyContact(agency_code="education", channel=channel, address=address)
        stub.SetAgencyContact(notify_pb2.SetAgencyContactRequest(contact=contact), metadata=admin)
    listed = stub.ListAgencyContacts(notify_pb2.ListAgencyContactsRequest(), metadata=admin).contacts
    keys = {c.channel: c.signing_key for c in listed}
    assert keys["email"] == ""
    assert keys["webhook"] == base64.b64encode(agency_key(WEBHOOK_KEY, PILOT_TENANT, "agency:education")).decode()
    with pytest.raises(grpc.RpcError) as denied:
        stub.ListAgencyContacts(
            notify_pb2.ListAgencyContactsRequest(), metadata=auth(secrets.token(role=Role.CASEWORKER))
        )
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
