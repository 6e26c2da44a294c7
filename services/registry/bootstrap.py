"""Composition root of the registry: the only place that builds engines, ciphers and servicers."""

from __future__ import annotations

from platform_runtime.db import Database
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.service import ServiceDefinition
from services.registry.adapters.orm import metadata
from services.registry.entrypoints import consumers, grpc_api
from services.registry.service_layer.services import RegistryService
from services.registry.settings import RegistrySettings


def build_service(settings: RegistrySettings, database: Database | None = None) -> RegistryService:
    return RegistryService(
        database or Database.connect(settings.common.database_url, metadata),
        FieldCipher(settings.pii_keys),
        BlindIndex(settings.blind_index_key),
    )


def definition(settings: RegistrySettings) -> ServiceDefinition:
    database = Database.connect(settings.common.database_url, metadata)
    service = build_service(settings, database)
    return ServiceDefinition(
        settings=settings.common,
        database=database,
        register=grpc_api.register(service),
        consumers=consumers.consumers(service),
    )
