"""gRPC servicers: translate protobuf to commands, call the service layer, translate back. Nothing else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import grpc
from minorprot.common.v1 import common_pb2
from minorprot.notify.v1 import notify_pb2, notify_pb2_grpc

from platform_runtime import errors
from platform_runtime.db import utcnow
from services.notify.adapters import messages
from services.notify.domain.audience import EVENT_TYPES
from services.notify.service_layer.crises import CrisisService
from services.notify.service_layer.deliveries import DeliveryService
from services.notify.service_layer.directory import DirectoryService
from services.notify.service_layer.receipts import ReceiptService
from services.notify.service_layer.recipients import beijing_date
from services.notify.service_layer.services import NotifyService
from services.notify.service_layer.town_templates import TemplateService


def _date(value: common_pb2.Date, field: str) -> date:
    try:
        return date(value.year, value.month, value.day)
    except ValueError as error:
        raise errors.InvalidInput.single(field, "not a date") from error


def _town_settings(minutes: int, default: int) -> notify_pb2.TownSettings:
    return notify_pb2.TownSettings(crisis_ack_minutes=minutes, default_crisis_ack_minutes=default)


class NotifyServicer(notify_pb2_grpc.NotifyServiceServicer):
    def __init__(
        self,
        service: NotifyService,
        deliveries: DeliveryService,
        directory: DirectoryService,
        crises: CrisisService,
        templates: TemplateService,
        webhook_key: bytes = b"",
        receipts: ReceiptService | None = None,
    ) -> None:
        self._receipts = receipts or ReceiptService(service.database, service)
        self._webhook_key = webhook_key  # to show each agency its own key (adapters/channels.agency_key)
        self._crises = crises
        self._templates = templates
        self._service = service
        self._deliveries = deliveries
        self._directory = directory

    def ListInbox(
        self, request: notify_pb2.ListInboxRequest, context: grpc.ServicerContext
    ) -> notify_pb2.ListInboxResponse:
        views = self._service.list_inbox(unread_only=request.unread_only, page_size=request.page_size)
        return notify_pb2.ListInboxResponse(notifications=[messages.notification(view) for view in views])

    def MarkRead(
        self, request: notify_pb2.MarkReadRequest, context: grpc.ServicerContext
    ) -> notify_pb2.MarkReadResponse:
        view = self._service.mark_read(request.notification_id)
        return notify_pb2.MarkReadResponse(notification=messages.notification(view))

    def Acknowledge(
        self, request: notify_pb2.AcknowledgeRequest, context: grpc.ServicerContext
    ) -> notify_pb2.AcknowledgeResponse:
        view = self._service.acknowledge(request.notification_id)
        return notify_pb2.AcknowledgeResponse(notification=messages.notification(view))

    def ListDeliveries(
        self, request: notify_pb2.ListDeliveriesRequest, context: grpc.ServicerContext
    ) -> notify_pb2.ListDeliveriesResponse:
        found = self._deliveries.list_deliveries(
            status=request.status,
            subject_type=request.subject_type,
            subject_id=request.subject_id,
            page_size=request.page_size,
        )
        return notify_pb2.ListDeliveriesResponse(deliveries=[messages.delivery(record) for record in found])

    def ResendDelivery(
        self, request: notify_pb2.ResendDeliveryRequest, context: grpc.ServicerContext
    ) -> notify_pb2.ResendDeliveryResponse:
        return notify_pb2.ResendDeliveryResponse(
            delivery=messages.delivery(self._deliveries.resend(request.delivery_id))
        )

    def GetMyContact(
        self, request: notify_pb2.GetMyContactRequest, context: grpc.ServicerContext
    ) -> notify_pb2.GetMyContactResponse:
        return notify_pb2.GetMyContactResponse(contact=messages.contact(self._directory.my_contact()))

    def UpdateMyContact(
        self, request: notify_pb2.UpdateMyContactRequest, context: grpc.ServicerContext
    ) -> notify_pb2.UpdateMyContactResponse:
        given = request.contact
        record = self._directory.update_my_contact(
            phone=given.phone,
            email=given.email,
            channels_off=list(given.channels_off),
            quiet_from=given.quiet_from,
            quiet_until=given.quiet_until,
            locale=given.locale,
        )
        return notify_pb2.UpdateMyContactResponse(contact=messages.contact(record))

    def ListContacts(
        self, request: notify_pb2.ListContactsRequest, context: grpc.ServicerContext
    ) -> notify_pb2.ListContactsResponse:
        return notify_pb2.ListContactsResponse(
            contacts=[messages.contact(record) for record in self._directory.people()]
        )

    def ListSubscriptions(
        self, request: notify_pb2.ListSubscriptionsRequest, context: grpc.ServicerContext
    ) -> notify_pb2.ListSubscriptionsResponse:
        return notify_pb2.ListSubscriptionsResponse(
            subscriptions=messages.subscriptions(self._directory.list_subscriptions()), event_types=EVENT_TYPES
        )

    def SetSubscription(
        self, request: notify_pb2.SetSubscriptionRequest, context: grpc.ServicerContext
    ) -> notify_pb2.SetSubscriptionResponse:
        given = request.subscription
        found = self._directory.set_subscription(given.event_type, given.recipient, list(given.channels))
        return notify_pb2.SetSubscriptionResponse(subscriptions=messages.subscriptions(found))

    def ListDutyRota(
        self, request: notify_pb2.ListDutyRotaRequest, context: grpc.ServicerContext
    ) -> notify_pb2.ListDutyRotaResponse:
        start = _date(request.from_date, "from_date") if request.HasField("from_date") else beijing_date(utcnow())
        days = self._directory.duty_rota(start, request.days)
        return notify_pb2.ListDutyRotaResponse(days=[messages.duty_day(*day) for day in days])

    def SetDutyOfficer(
        self, request: notify_pb2.SetDutyOfficerRequest, context: grpc.ServicerContext
    ) -> notify_pb2.SetDutyOfficerResponse:
        day = self._directory.set_duty_officer(_date(request.date, "date"), request.user_id)
        return notify_pb2.SetDutyOfficerResponse(day=messages.duty_day(*day))

    def ListAgencyContacts(
        self, request: notify_pb2.ListAgencyContactsRequest, context: grpc.ServicerContext
    ) -> notify_pb2.ListAgencyContactsResponse:
        return notify_pb2.ListAgencyContactsResponse(
            contacts=[
                messages.agency_contact(record, self._webhook_key) for record in self._directory.agency_contacts()
            ]
        )

    def SetAgencyContact(
        self, request: notify_pb2.SetAgencyContactRequest, context: grpc.ServicerContext
    ) -> notify_pb2.SetAgencyContactResponse:
        given = request.contact
        found = self._directory.set_agency_contact(given.agency_code, given.channel, given.address)
        return notify_pb2.SetAgencyContactResponse(
            contacts=[messages.agency_contact(record, self._webhook_key) for record in found]
        )

    def GetTownSettings(
        self, request: notify_pb2.GetTownSettingsRequest, context: grpc.ServicerContext
    ) -> notify_pb2.GetTownSettingsResponse:
        return notify_pb2.GetTownSettingsResponse(settings=_town_settings(*self._directory.town_settings()))

    def SetTownSettings(
        self, request: notify_pb2.SetTownSettingsRequest, context: grpc.ServicerContext
    ) -> notify_pb2.SetTownSettingsResponse:
        found = self._directory.set_town_settings(request.settings.crisis_ack_minutes)
        return notify_pb2.SetTownSettingsResponse(settings=_town_settings(*found))

    def ListCrises(
        self, request: notify_pb2.ListCrisesRequest, context: grpc.ServicerContext
    ) -> notify_pb2.ListCrisesResponse:
        views, next_token = self._crises.list_crises(
            open_only=request.open_only, page_size=request.page_size, page_token=request.page_token
        )
        return notify_pb2.ListCrisesResponse(
            crises=[messages.crisis(view) for view in views], next_page_token=next_token
        )

    def AcknowledgeCrisis(
        self, request: notify_pb2.AcknowledgeCrisisRequest, context: grpc.ServicerContext
    ) -> notify_pb2.AcknowledgeCrisisResponse:
        view = self._crises.acknowledge(crisis_id=request.crisis_id, code=request.code)
        return notify_pb2.AcknowledgeCrisisResponse(crisis=messages.crisis(view))

    def ReceiveSmsReply(
        self, request: notify_pb2.ReceiveSmsReplyRequest, context: grpc.ServicerContext
    ) -> notify_pb2.ReceiveSmsReplyResponse:
        return notify_pb2.ReceiveSmsReplyResponse(crisis_id=self._crises.sms_reply(request.from_phone, request.text))

    def ListTemplates(
        self, request: notify_pb2.ListTemplatesRequest, context: grpc.ServicerContext
    ) -> notify_pb2.ListTemplatesResponse:
        return notify_pb2.ListTemplatesResponse(
            templates=[messages.template(found) for found in self._templates.list_templates()]
        )

    def SetTemplate(
        self, request: notify_pb2.SetTemplateRequest, context: grpc.ServicerContext
    ) -> notify_pb2.SetTemplateResponse:
        given = request.template
        found = self._templates.set_template(given.event_type, given.locale, given.subject, given.text)
        return notify_pb2.SetTemplateResponse(template=messages.template(found))

    def PreviewTemplate(
        self, request: notify_pb2.PreviewTemplateRequest, context: grpc.ServicerContext
    ) -> notify_pb2.PreviewTemplateResponse:
        rendered = self._templates.preview(request.event_type, request.locale, request.subject, request.text)
        return notify_pb2.PreviewTemplateResponse(subject=rendered.subject, text=rendered.text)

    def SendReceipt(
        self, request: notify_pb2.SendReceiptRequest, context: grpc.ServicerContext
    ) -> notify_pb2.SendReceiptResponse:
        delivery_id = self._receipts.send_receipt(
            request.report_id, request.receipt_number, request.channel, request.address, request.locale
        )
        return notify_pb2.SendReceiptResponse(delivery_id=delivery_id)


def register(
    service: NotifyService,
    deliveries: DeliveryService,
    directory: DirectoryService,
    crises: CrisisService,
    templates: TemplateService,
    webhook_key: bytes = b"",
) -> Callable[[grpc.Server], list[str]]:
    def add(server: grpc.Server) -> list[str]:
        servicer = NotifyServicer(service, deliveries, directory, crises, templates, webhook_key)
        notify_pb2_grpc.add_NotifyServiceServicer_to_server(servicer, server)
        return [notify_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name]

    return add
