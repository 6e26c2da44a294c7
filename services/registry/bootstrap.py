"""Composition root of the registry: the only place that builds engines, ciphers, services and workers."""

from __future__ import annotations

from dataclasses import dataclass

from platform_runtime.db import Database
from platform_runtime.grpc_server import GrpcServer
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.service import ServiceDefinition, build
from platform_runtime.supervisor import Worker
from services.registry.adapters.orm import metadata
from services.registry.entrypoints import consumers, grpc_api, survey_api, workers
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.services import RegistryService
from services.registry.service_layer.survey import SurveyService
from services.registry.settings import RegistrySettings


@dataclass(frozen=True)
class Services:
    registry: RegistryService
    casework: CaseworkService


def build_services(settings: RegistrySettings, database: Database | None = None) -> Services:
    database = database or Database.connect(settings.common.database_url, metadata)
    blind_index = BlindIndex(settings.blind_index_key)
    return Services(
        registry=RegistryService(database, FieldCipher(settings.pii_keys), blind_index),
        casework=CaseworkService(database, blind_index),
    )


def build_service(settings: RegistrySettings, database: Database | None = None) -> RegistryService:
    return build_services(settings, database).registry


def _definition(
    settings: RegistrySettings, database: Database, services: Services, workers: list[Worker] | None = None
) -> ServiceDefinition:
    return ServiceDefinition(
        settings=settings.common,
        database=database,
        register=survey_api.register(
            grpc_api.register(services.registry, services.casework),
            SurveyService(services.registry, services.casework, database, BlindIndex(settings.blind_index_key)),
        ),
        consumers=consumers.consumers(services.registry, services.casework),
        workers=workers or [],
    )


def definition(settings: RegistrySettings) -> ServiceDefinition:
    """gRPC, relay and consumers: what the runtime builds for every service (no registry-only workers)."""
    database = Database.connect(settings.common.database_url, metadata)
    return _definition(settings, database, build_services(settings, database))


def server(settings: RegistrySettings) -> GrpcServer:
    """The whole registry process: the runtime's server plus the periodic case work (overdue visits,
    categories derived again each day)."""
    database = Database.connect(settings.common.database_url, metadata)
    services = build_services(settings, database)
    casework = workers.casework_worker(services.registry, services.casework, settings.visit_check_seconds)
    return build(_definition(settings, database, services, [casework]))
