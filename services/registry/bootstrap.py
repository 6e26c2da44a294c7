"""Composition root of the registry: the only place that builds engines, ciphers, services and workers."""

from __future__ import annotations

from dataclasses import dataclass

from platform_runtime.db import Database
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.service import ServiceDefinition
from services.registry.adapters.orm import metadata
from services.registry.entrypoints import consumers, grpc_api, survey_api, workers
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.registry import RegistryService
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
        registry=RegistryService(
            database,
            FieldCipher(settings.pii_keys),
            blind_index,
            statistics_cache_seconds=settings.statistics_cache_seconds,
        ),
        casework=CaseworkService(database, blind_index),
    )


def build_service(settings: RegistrySettings, database: Database | None = None) -> RegistryService:
    return build_services(settings, database).registry


def definition(settings: RegistrySettings, *, periodic_work: bool = True) -> ServiceDefinition:
    """The whole registry process: gRPC, relay, consumers and, with `periodic_work`, the periodic case work
    (overdue visits, categories derived again each day). Tests that drive time themselves leave it out."""
    database = Database.connect(settings.common.database_url, metadata)
    services = build_services(settings, database)
    periodic = [workers.casework_worker(services.registry, services.casework, settings.visit_check_seconds)]
    return ServiceDefinition(
        settings=settings.common,
        database=database,
        register=survey_api.register(
            grpc_api.register(services.registry, services.casework),
            SurveyService(services.registry, services.casework, database, BlindIndex(settings.blind_index_key)),
        ),
        consumers=consumers.consumers(services.registry, services.casework),
        workers=periodic if periodic_work else [],
    )
