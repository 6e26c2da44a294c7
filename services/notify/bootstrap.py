"""Composition root of the notify service: the only place that builds engines and servicers."""

from __future__ import annotations

from datetime import timedelta

from platform_runtime.db import Database
from platform_runtime.service import ServiceDefinition
from services.notify.adapters.orm import metadata
from services.notify.entrypoints import consumers, grpc_api
from services.notify.entrypoints.delivery_workers import delivery_workers, escalation_worker
from services.notify.service_layer.crises import CrisisService
from services.notify.service_layer.deliveries import DeliveryService
from services.notify.service_layer.directory import DirectoryService
from services.notify.service_layer.services import NotifyService
from services.notify.service_layer.town_templates import TemplateService
from services.notify.settings import NotifySettings


def build_service(settings: NotifySettings, database: Database | None = None) -> NotifyService:
    return NotifyService(
        database or Database.connect(settings.common.database_url, metadata),
        channels=settings.channels,
        portal_url=settings.portal_url,
    )


def definition(settings: NotifySettings) -> ServiceDefinition:
    database = Database.connect(settings.common.database_url, metadata)
    service = build_service(settings, database)
    deliveries = DeliveryService(database, lease=timedelta(seconds=settings.delivery_lease_seconds))
    limit = timedelta(seconds=settings.crisis_ack_seconds)
    crises = CrisisService(database, service, limit=limit)
    return ServiceDefinition(
        settings=settings.common,
        database=database,
        register=grpc_api.register(
            service,
            deliveries,
            DirectoryService(database, default_ack_limit=limit),
            crises,
            TemplateService(database),
            settings.webhook_signing_key,
        ),
        consumers=consumers.consumers(service),
        workers=[
            *delivery_workers(deliveries, settings),
            escalation_worker(crises, settings.delivery_poll_ms / 1000),
        ],
    )
