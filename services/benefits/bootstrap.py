"""Composition root of the benefits service: the only place that builds engines, services and workers."""

from __future__ import annotations

from dataclasses import dataclass

from platform_runtime.db import Database
from platform_runtime.pii import BlindIndex
from platform_runtime.service import ServiceDefinition
from services.benefits.adapters.orm import metadata
from services.benefits.entrypoints import consumers, grpc_api, workers
from services.benefits.service_layer.applications import Applications
from services.benefits.service_layer.catalogue import Catalogue
from services.benefits.service_layer.disbursement import Disbursements
from services.benefits.service_layer.insurance_roster import InsuranceRoster
from services.benefits.service_layer.register_events import RegisterFollower
from services.benefits.service_layer.services import BenefitsService
from services.benefits.settings import BenefitsSettings


@dataclass(frozen=True)
class Services:
    insurance: BenefitsService
    catalogue: Catalogue
    applications: Applications
    runs: Disbursements
    follower: RegisterFollower
    roster: InsuranceRoster


def build_services(database: Database, index: BlindIndex, *, chunk_size: int = 2000) -> Services:
    applications = Applications(database)
    return Services(
        insurance=BenefitsService(database),
        catalogue=Catalogue(database),
        applications=applications,
        runs=Disbursements(database, chunk_size=chunk_size),
        follower=RegisterFollower(database, applications),
        roster=InsuranceRoster(database, index),
    )


def build_service(settings: BenefitsSettings, database: Database | None = None) -> BenefitsService:
    return BenefitsService(database or Database.connect(settings.common.database_url, metadata))


def definition(settings: BenefitsSettings, *, periodic_work: bool = True) -> ServiceDefinition:
    database = Database.connect(settings.common.database_url, metadata)
    services = build_services(database, BlindIndex(settings.blind_index_key), chunk_size=settings.run_chunk_size)
    periodic = [
        workers.eligibility_worker(services.insurance, services.follower, settings.eligibility_check_seconds),
        workers.reviews_worker(services.follower, settings.eligibility_check_seconds),
    ]
    return ServiceDefinition(
        settings=settings.common,
        database=database,
        register=grpc_api.register(services),
        consumers=consumers.consumers(services.insurance, services.follower),
        workers=periodic if periodic_work else [],
    )
