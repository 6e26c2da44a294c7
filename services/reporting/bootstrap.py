"""Composition root of the reporting service: the only place that builds engines, clients and servicers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from platform_runtime.auth import ServiceTokens, TokenIssuer
from platform_runtime.db import Database, utcnow
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.service import ServiceDefinition
from services.reporting.adapters.notify_client import GrpcReceiptNotifier
from services.reporting.adapters.orm import metadata
from services.reporting.adapters.pending_receipts import SqlPendingReceipts
from services.reporting.adapters.registry_client import GrpcChildDirectory
from services.reporting.adapters.unit_of_work import SqlReportStore
from services.reporting.entrypoints import consumers, crisis_steps_api, grpc_api
from services.reporting.entrypoints.deadline_checker import deadline_checker
from services.reporting.entrypoints.receipt_sender import receipt_sender
from services.reporting.service_layer.crisis_steps import CrisisStepService
from services.reporting.service_layer.ports import ChildDirectory
from services.reporting.service_layer.receipt_sending import ReceiptSender
from services.reporting.service_layer.services import ReportingService
from services.reporting.settings import ReportingSettings


def build_service(
    settings: ReportingSettings,
    database: Database | None = None,
    children: ChildDirectory | None = None,
    *,
    now: Callable[[], datetime] = utcnow,
) -> ReportingService:
    return ReportingService(
        SqlReportStore(
            database or Database.connect(settings.common.database_url, metadata), FieldCipher(settings.pii_keys)
        ),
        BlindIndex(settings.blind_index_key),
        children
        or GrpcChildDirectory(
            settings.registry_target,
            ServiceTokens(TokenIssuer(settings.workload_signing_key)),
            settings.common.grpc_tls,
        ),
        auto_link_threshold=settings.auto_link_threshold,
        receipt_lookups_per_minute=settings.receipt_lookups_per_minute,
        now=now,
    )


def definition(
    settings: ReportingSettings, *, now: Callable[[], datetime] = utcnow, periodic_work: bool = True
) -> ServiceDefinition:
    """The whole process: gRPC, the outbox relay (the runtime's), the consumer of notify's crisis steps and,
    with `periodic_work`, the deadline checker."""
    database = Database.connect(settings.common.database_url, metadata)
    service = build_service(settings, database, now=now)
    reports, steps = grpc_api.register(service), crisis_steps_api.register(CrisisStepService(database))
    receipts = ReceiptSender(
        SqlPendingReceipts(database, FieldCipher(settings.pii_keys)),
        GrpcReceiptNotifier(
            settings.notify_target,
            ServiceTokens(TokenIssuer(settings.workload_signing_key)),
            settings.common.grpc_tls,
        ),
        now=now,
    )
    return ServiceDefinition(
        settings=settings.common,
        database=database,
        register=lambda server: reports(server) + steps(server),
        public_methods=grpc_api.PUBLIC_METHODS,
        consumers=consumers.consumers(),
        # The receipts always go (a reporter is waiting); the periodic deadline check is optional in tests.
        workers=[
            receipt_sender(receipts, settings.receipt_poll_ms / 1000),
            *([deadline_checker(service, settings.deadline_check_seconds)] if periodic_work else []),
        ],
    )
