"""gRPC servicers: translate protobuf to commands, call the service layer, translate back. Nothing else."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from minorprot.notify.v1 import notify_pb2, notify_pb2_grpc

from services.notify.adapters import messages
from services.notify.service_layer.services import NotifyService


class NotifyServicer(notify_pb2_grpc.NotifyServiceServicer):
    def __init__(self, service: NotifyService) -> None:
        self._service = service

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


def register(service: NotifyService) -> Callable[[grpc.Server], list[str]]:
    def add(server: grpc.Server) -> list[str]:
        notify_pb2_grpc.add_NotifyServiceServicer_to_server(NotifyServicer(service), server)
        return [notify_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name]

    return add
