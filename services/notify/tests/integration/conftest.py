"""The notify service against a fresh PostgreSQL database: migrated as the owner, used as the app role."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest
from minorprot.notify.v1 import notify_pb2_grpc

from platform_runtime.auth import TokenVerifier
from platform_runtime.consumer import IdempotentConsumer
from platform_runtime.db import Database
from platform_runtime.grpc_server import build_server
from platform_runtime.settings import KafkaSettings
from services.notify.adapters.orm import metadata
from services.notify.entrypoints import grpc_api
from services.notify.entrypoints.consumers import consumers
from services.notify.service_layer.crises import CrisisService
from services.notify.service_layer.deliveries import DeliveryService
from services.notify.service_layer.directory import DirectoryService
from services.notify.service_layer.services import NotifyService
from services.notify.service_layer.town_templates import TemplateService
from tests.support.infra import Secrets
from tests.support.services import consumer_under_test, service_database

WEBHOOK_KEY = b"w" * 32


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    with service_database(postgres_url, "notify", metadata) as database:
        yield database


@pytest.fixture
def service(database: Database) -> NotifyService:
    return NotifyService(database)


@pytest.fixture
def consumer(service: NotifyService, database: Database, kafka: KafkaSettings) -> Iterator[IdempotentConsumer]:
    (spec,) = consumers(service)
    with consumer_under_test(spec, database, kafka) as consumer:
        yield consumer


@pytest.fixture
def stub(service: NotifyService, database: Database, secrets: Secrets) -> Iterator[notify_pb2_grpc.NotifyServiceStub]:
    """Notify's gRPC API over real loopback, verifying tokens as the service does."""
    server = build_server(
        port=0,
        verifier=TokenVerifier(secrets.keyring(), "notify"),
        register=grpc_api.register(
            service,
            DeliveryService(database),
            DirectoryService(database),
            CrisisService(database, service, limit=timedelta(minutes=15)),
            TemplateService(database),
            WEBHOOK_KEY,
        ),
        bind_host="127.0.0.1",
    )
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield notify_pb2_grpc.NotifyServiceStub(channel)
    server.stop(grace=0)
