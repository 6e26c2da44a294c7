from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc

from platform_runtime.auth import Role
from platform_runtime.settings import KafkaSettings
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT, Secrets
from tests.support.services import Running, bearer, running_registry, running_reporting


@pytest.fixture(scope="module")
def registry(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Running]:
    with running_registry(postgres_url, kafka, secrets) as running:
        stub = registry_pb2_grpc.TenantDirectoryServiceStub(running.channel())
        for code, name in ((PILOT_TENANT, "良乡镇"), (OTHER_TENANT, "周口店地区")):
            stub.OnboardTenant(
                registry_pb2.OnboardTenantRequest(code=code, name=name, district_code=DISTRICT),
                metadata=bearer(secrets.token(code, Role.SYSTEM, audience="registry")),
            )
        yield running


@pytest.fixture(scope="module")
def reporting(postgres_url: str, kafka: KafkaSettings, secrets: Secrets, registry: Running) -> Iterator[Running]:
    with running_reporting(postgres_url, kafka, secrets, registry.target) as running:
        yield running


@pytest.fixture
def channel_to(request: pytest.FixtureRequest) -> Iterator[grpc.Channel]:
    running: Running = request.getfixturevalue(request.param)
    with running.channel() as channel:
        yield channel
