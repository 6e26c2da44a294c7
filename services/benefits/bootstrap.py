"""Composition root of the benefits service: the only place that builds engines and servicers."""

from __future__ import annotations

from platform_runtime.db import Database
from platform_runtime.service import ServiceDefinition
from services.benefits.adapters.orm import metadata
from services.benefits.entrypoints import consumers, grpc_api
from services.benefits.service_layer.services import BenefitsService
from services.benefits.settings import BenefitsSettings


def build_service(settings: BenefitsSettings, database: Database | None = None) -> BenefitsService:
    return BenefitsService(database or Database.connect(settings.common.database_url, metadata))


def definition(settings: BenefitsSettings) -> ServiceDefinition:
    database = Database.connect(settings.common.database_url, metadata)
    service = build_service(settings, database)
    return ServiceDefinition(
        settings=settings.common,
        database=database,
        register=grpc_api.register(service),
        consumers=consumers.consumers(service),
    )
