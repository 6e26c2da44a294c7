"""Composition root of the referral service: the only place that builds engines and servicers."""

from __future__ import annotations

from platform_runtime.db import Database
from platform_runtime.service import ServiceDefinition
from services.referral.adapters.orm import metadata
from services.referral.entrypoints import consumers, grpc_api
from services.referral.entrypoints.escalation import escalation_worker
from services.referral.service_layer.services import ReferralService
from services.referral.settings import ReferralSettings


def build_service(settings: ReferralSettings, database: Database | None = None) -> ReferralService:
    return ReferralService(database or Database.connect(settings.common.database_url, metadata))


def definition(settings: ReferralSettings, *, periodic_work: bool = True) -> ServiceDefinition:
    """The whole process: gRPC, relay, consumers and, with `periodic_work`, the escalation of overdue referrals."""
    database = Database.connect(settings.common.database_url, metadata)
    service = build_service(settings, database)
    return ServiceDefinition(
        settings=settings.common,
        database=database,
        register=grpc_api.register(service),
        consumers=consumers.consumers(service),
        workers=[escalation_worker(service, settings.escalation_check_seconds)] if periodic_work else [],
    )
