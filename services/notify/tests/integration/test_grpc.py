"""The notify service over real loopback gRPC, with signed tokens."""

import grpc
import pytest
from minorprot.notify.v1 import notify_pb2, notify_pb2_grpc

from platform_runtime.auth import Role, TokenVerifier
from platform_runtime.grpc_server import build_server
from services.notify.entrypoints import grpc_api
from services.notify.service_layer.deliveries import DeliveryService
from services.notify.service_layer.directory import DirectoryService
from services.notify.tests.integration.builders import referral_opened
from tests.support.events import message

pytestmark = pytest.mark.integration


@pytest.fixture
def stub(service, database, secrets):
    server = build_server(
        port=0,
        verifier=TokenVerifier(secrets.public_key),
        register=grpc_api.register(service, DeliveryService(database), DirectoryService(database)),
        bind_host="127.0.0.1",
    )
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield notify_pb2_grpc.NotifyServiceStub(channel)
    server.stop(grace=0)


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
