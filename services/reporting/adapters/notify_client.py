"""Notify, reached over gRPC as the reporting service itself (its workload identity), for the report's town:
it sends reporters their receipts (SendReceipt). The reporter's contact goes this way only, never on Kafka."""

from __future__ import annotations

import grpc
from minorprot.notify.v1 import notify_pb2, notify_pb2_grpc

from platform_runtime.auth import ServiceTokens, workload_principal
from platform_runtime.grpc_client import workload_channel
from platform_runtime.settings import GrpcTls
from platform_runtime.tenancy import acting_as
from services.reporting.service_layer.receipt_sending import PendingReceipt, ReceiptNotTaken
from services.reporting.settings import SERVICE_NAME

TIMEOUT_SECONDS = 5.0
# Notify judged the request itself wrong: the same request can never be taken.
PERMANENT = frozenset({grpc.StatusCode.INVALID_ARGUMENT})


class GrpcReceiptNotifier:
    def __init__(self, target: str, tokens: ServiceTokens, tls: GrpcTls | None = None) -> None:
        channel = workload_channel(target, tokens, SERVICE_NAME, "notify", tls)
        self._stub = notify_pb2_grpc.NotifyServiceStub(channel)

    def send_receipt(self, pending: PendingReceipt) -> str:
        request = notify_pb2.SendReceiptRequest(
            report_id=pending.report_id,
            receipt_number=pending.receipt,
            channel=pending.destination.channel.value,
            address=pending.destination.address,
            locale=pending.destination.locale,
        )
        # The token names the receipt's town (the worker serves every town).
        with acting_as(workload_principal(SERVICE_NAME, pending.tenant)):
            try:
                # Waits for the connection (within the timeout) rather than failing at once while the channel
                # backs off after notify was away: the next try would otherwise fail as long as that lasts.
                reply = self._stub.SendReceipt(request, timeout=TIMEOUT_SECONDS, wait_for_ready=True)
            except grpc.RpcError as exc:
                raise ReceiptNotTaken(
                    f"notify SendReceipt failed: {exc.code().name}: {exc.details()}", permanent=exc.code() in PERMANENT
                ) from exc
        return str(reply.delivery_id)
