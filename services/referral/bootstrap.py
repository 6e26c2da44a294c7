"""Composition root of the referral service: the only place that builds engines and servicers."""

from __future__ import annotations

from platform_runtime.db import Database
from platform_runtime.service import ServiceDefinition
from services.referral.adapters.orm import metadata
from services.referral.entrypoints import consumers, grpc_api
from services.referral.entrypoints.agency_edge import AgencyEdge
from services.referral.entrypoints.escalation import escalation_worker
from services.referral.service_layer.credentials import AgencyCredentials
from services.referral.service_layer.services import ReferralService
from services.referral.settings import ReferralSettings


def build_service(settings: ReferralSettings, database: Database | None = None) -> ReferralService:
    return ReferralService(database or Database.connect(settings.common.database_url, metadata))


def build_credentials(
    settings: ReferralSettings, service: ReferralService, database: Database
) -> AgencyCredentials | None:
    if not settings.agency_token_private_key:
        return None
    return AgencyCredentials(
        database,
        settings.agency_token_private_key,
        service.config,
        accepted_keys=settings.agency_token_public_keys,
    )


def definition(settings: ReferralSettings, *, periodic_work: bool = True) -> ServiceDefinition:
    """The whole process: gRPC, relay, consumers, the agency edge (when it has a signing key) and, with
    `periodic_work`, the escalation of overdue referrals."""
    database = Database.connect(settings.common.database_url, metadata)
    service = build_service(settings, database)
    credentials = build_credentials(settings, service, database)
    workers = [escalation_worker(service, settings.escalation_check_seconds)] if periodic_work else []
    if credentials is not None:
        edge = AgencyEdge(
            service,
            credentials,
            port=settings.agency_port,
            tls=(settings.agency_tls_cert.encode(), settings.agency_tls_key.encode())
            if settings.agency_tls_cert
            else None,
        )
        workers.append(edge.worker())
    return ServiceDefinition(
        settings=settings.common,
        database=database,
        register=grpc_api.register(service, credentials),
        consumers=consumers.consumers(service),
        workers=workers,
    )
